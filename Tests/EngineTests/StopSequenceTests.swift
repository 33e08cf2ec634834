import Testing
@testable import Engine

@Test func stopStringAcrossPiecesIsNeverEmitted() {
    var stops = StopSequences(["END"])
    var out = ""
    var stopped = false
    for piece in ["Hello E", "N", "D and more"] {
        let r = stops.append(piece)
        out += r.emit
        if r.stopped { stopped = true; break }
    }
    #expect(stopped)
    #expect(out == "Hello ")
    #expect(stops.fullText == "Hello ")
}

@Test func heldBackPrefixIsReleasedWhenItIsNotAStop() {
    var stops = StopSequences(["</answer>"])
    var out = stops.append("a </an").emit
    #expect(out == "a ")  // "</an" might start the stop string
    out += stops.append("other").emit
    #expect(!out.contains("</answer>"))
    out += stops.flush()
    #expect(out == "a </another")
}

@Test func earliestOfSeveralStopsWins() {
    var stops = StopSequences(["\n\n", "STOP"])
    let r = stops.append("one STOP two\n\nthree")
    #expect(r.stopped)
    #expect(r.emit == "one ")
}

@Test func noStopsPassTextThrough() {
    var stops = StopSequences([])
    #expect(stops.append("abc").emit == "abc")
    #expect(stops.flush() == "")
}
