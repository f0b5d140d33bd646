#pragma once
// Minimal reader of the zip container torch.save writes (entries stored uncompressed,
// zip64 when large). Only what a weights file needs: the table of contents and the bytes
// of each stored entry, all bounds-checked against the file.

#include <map>
#include <string>

#include "mapped_file.h"

namespace vtl::weights::detail {

/// True when `bytes` starts like a zip archive ("PK\3\4").
bool looks_like_zip(const ByteView& bytes);

/// Entry name -> its bytes. Throws vtl::Error naming the file for a malformed archive or
/// a compressed entry.
std::map<std::string, ByteView> read_zip_entries(const ByteView& file);

}  // namespace vtl::weights::detail
