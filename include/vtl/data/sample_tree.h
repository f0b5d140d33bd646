#pragma once
// A class-folder dataset made of symbolic links to a seeded random sample of existing
// category folders (e.g. Debian's openclipart-png): what `vtl demo` and the benchmarks
// train on without copying images.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace vtl::data {

/// Replaces `dir` with `dir/<category>/NNNN_<name>` links to up to `per_class` images of
/// each `source_root/<category>` folder (recursive listing, a file reachable by two names
/// counted once, a random choice seeded by `seed` and the category name). A missing
/// category folder throws vtl::Error naming it. Returns the number of links made.
int64_t link_sample_tree(const std::filesystem::path& source_root,
                         const std::vector<std::string>& categories, int64_t per_class,
                         uint64_t seed, const std::filesystem::path& dir);

}  // namespace vtl::data
