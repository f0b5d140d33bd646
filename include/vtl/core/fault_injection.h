#pragma once
// Named points where a test can kill the process, to check what a crash at exactly that
// moment leaves behind. With VTL_FAULT_KILL_AT=<name> (or <name>#<n>: the n-th time, 1 by
// default) in the environment, the process sends itself SIGKILL when it reaches the point
// of that name. Without the variable a point costs one cached getenv.
//
// The points vtl has:
//   commit:<file name>      just before a fully written temporary file is renamed over
//                           <file name> (write_file_atomically, commit_file); the temporary
//                           file is first cut to half its size, as a write cut short leaves it
//   commit-set:journal      just before a multi-file commit's journal is renamed into place
//   commit-set:<file name>  after the journal is in place, just before <file name> is moved
//   distributed-extract:shard-done
//                           a rank of `vtl extract --distributed` whose shard is written and
//                           met by every rank, before rank 0 merges the shards

#include <string>

namespace vtl {

/// SIGKILLs the process when VTL_FAULT_KILL_AT names this point (see above); `before_kill`,
/// when given, runs first.
void fault_point(const std::string& name, void (*before_kill)(const char*) = nullptr,
                 const char* argument = nullptr);

}  // namespace vtl
