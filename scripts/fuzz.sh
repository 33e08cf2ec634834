#!/usr/bin/env bash
# Fuzz smoke: builds libFuzzer targets for the JSON reader and the image decoders (tools/fuzz) with
# `swiftc -sanitize=fuzzer,address` and runs each for SECONDS (default 60) from a seed corpus of the fixtures.
# A crash, trap, leak or hang (a single input over 10 s) fails the run and leaves the input under .build/fuzz/.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
out=.build/fuzz
mkdir -p "$out/json-corpus" "$out/image-corpus"

# Seeds: small JSON files and every fixture image.
for f in Tests/Fixtures/models/tiny/*.json Tests/Fixtures/models/tiny/reference/*.json; do
    [ -f "$f" ] && [ "$(stat -c %s "$f")" -lt 200000 ] && cp "$f" "$out/json-corpus/" || true
done
printf '%s' '{"messages":[{"role":"user","content":[{"type":"text","text":"h\u00e9\ud83d\ude00"}]}],"stop":["a"],"top_k":-1}' > "$out/json-corpus/request.json"
printf '%s' '["\ud800\u0041",1E400,-0.0e-0,{"":{}}]' > "$out/json-corpus/edges.json"
for f in Tests/Fixtures/images/*.{png,jpg,webp,gif,bmp}; do [ -f "$f" ] && cp "$f" "$out/image-corpus/"; done

flags=(-sanitize=fuzzer,address -parse-as-library -O -g)
# The linker warns about every sanitizer symbol: the build's output goes to a log, shown only when it fails.
build() {
    echo "building $1"
    shift
    "$@" > "$out/build.log" 2>&1 || { tail -n 40 "$out/build.log"; exit 1; }
}
build "the JSON fuzzer" swiftc "${flags[@]}" -module-name JSONFuzz Sources/JSON/*.swift tools/fuzz/JSONFuzz.swift -o "$out/json-fuzzer"
# Every C file of the codec glue (decoders and encoders: Imaging links them all).
glue=()
for c in Sources/CImageCodecs/*.c; do
    o="$out/$(basename "$c" .c).o"
    build "the C codec glue ($(basename "$c"))" clang -c -O1 -g -fsanitize=fuzzer-no-link,address "$c" \
        -I Sources/CImageCodecs/include -o "$o"
    glue+=("$o")
done
build "the image fuzzer" swiftc "${flags[@]}" -module-name ImageFuzz -Xcc -fmodule-map-file=tools/fuzz/module.modulemap \
    -I Sources/CImageCodecs/include Sources/Imaging/*.swift tools/fuzz/ImageFuzz.swift "${glue[@]}" \
    -ljpeg -lpng16 -lwebp -lwebpdemux -lgif -o "$out/image-fuzzer"

run() {
    local name=$1 corpus=$2
    echo "fuzzing $name for $seconds s"
    (cd "$out" && "./$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
        -print_final_stats=1 "$corpus" 2>&1 | tail -n 12)
}
run json-fuzzer json-corpus
run image-fuzzer image-corpus
