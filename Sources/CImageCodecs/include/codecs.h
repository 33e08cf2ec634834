// Thin C glue over Debian's image codec libraries. Filled in by the Imaging work.
#pragma once
int pl_codecs_version(void);
