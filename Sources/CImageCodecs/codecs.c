#include "codecs.h"
int pl_codecs_version(void) { return 1; }
