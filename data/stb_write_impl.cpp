// The implementation of stb_image_write (8-bit PNG overlays; the tests also use its JPEG writer), without stdio.
// Its JPEG encoder left-shifts negative values, so sanitized builds compile this file with -fno-sanitize=shift
// (CMakeLists.txt); the reader in stb_impl.cpp stays fully checked.
#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_WRITE_IMPLEMENTATION

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#include <stb_image_write.h>
#pragma GCC diagnostic pop
