// PCRE2 for 8-bit code units (UTF-8), as `journalctl --grep` uses it. The width-generic names are
// macros Swift cannot import: Swift calls the `_8` functions.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
