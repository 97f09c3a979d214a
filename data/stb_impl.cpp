// The implementation of stb_image (the reader), compiled once here with our limits: no image side beyond
// kMaxImageSide, PNG, JPEG and PNM only, and no stdio (every file is read by our own code). The writer is in
// stb_write_impl.cpp.
#include "data/image_io.h"

#define STBI_MAX_DIMENSIONS 65535
static_assert(STBI_MAX_DIMENSIONS == massmap::data::kMaxImageSide, "stb's limit is ours");
#define STBI_NO_STDIO
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNM
#define STB_IMAGE_IMPLEMENTATION

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#include <stb_image.h>
#pragma GCC diagnostic pop
