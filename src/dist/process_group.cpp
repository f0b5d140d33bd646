#include "vtl/dist/process_group.h"

#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <thread>

#include <fmt/format.h>
#include <torch/version.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(VTL_WITH_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "vtl/core/error.h"

namespace vtl::dist {
namespace {

// LibTorch 2 split the process group into a front and per-device backends; the backends
// keep 1.13's collective calls.
#if TORCH_VERSION_MAJOR >= 2
using Collectives = c10d::Backend;
#else
using Collectives = c10d::ProcessGroup;
#endif

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::string(value) : fallback;
}

int env_int(const char* name, int fallback, bool required) {
  const char* value = std::getenv(name);
  if (!value || !*value) {
    VTL_CHECK(!required,
              "--distributed: ${} is not set; launch with torchrun or set RANK, WORLD_SIZE, "
              "MASTER_ADDR and MASTER_PORT (docs/distributed.md)",
              name);
    return fallback;
  }
  char* end = nullptr;
  const long parsed = std::strtol(value, &end, 10);
  VTL_CHECK(end && *end == '\0' && parsed >= 0 && parsed <= 1 << 30,
            "--distributed: ${}='{}' is not a non-negative integer", name, value);
  return int(parsed);
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

}  // namespace

LaunchEnv LaunchEnv::from_environment(const std::string& store_file) {
  LaunchEnv env;
  env.world_size = env_int("WORLD_SIZE", 1, true);
  env.rank = env_int("RANK", 0, true);
  env.local_rank = env_int("LOCAL_RANK", 0, false);
  env.master_addr = env_or("MASTER_ADDR", "");
  VTL_CHECK(!env.master_addr.empty() || !store_file.empty(),
            "--distributed: $MASTER_ADDR is not set (the host of rank 0, or give a shared "
            "store file with --dist-store-file)");
  env.master_port = env_int("MASTER_PORT", 29500, env.master_addr.size() > 0);
  VTL_CHECK(env.master_port <= 65535, "--distributed: $MASTER_PORT={} is not a port",
            env.master_port);
  env.agent_store = env_or("TORCHELASTIC_USE_AGENT_STORE", "") == "True";
  env.restart_count = env_int("TORCHELASTIC_RESTART_COUNT", 0, false);
  VTL_CHECK(env.world_size >= 1, "--distributed: $WORLD_SIZE must be at least 1");
  VTL_CHECK(env.rank < env.world_size, "--distributed: $RANK={} is not below $WORLD_SIZE={}",
            env.rank, env.world_size);
  return env;
}

GroupOptions group_options(double timeout_seconds, const std::string& store_file,
                           const std::string& device) {
  GroupOptions options;
  if (timeout_seconds <= 0) {
    const std::string text = env_or("VTL_DIST_TIMEOUT", "60");
    char* end = nullptr;
    timeout_seconds = std::strtod(text.c_str(), &end);
    VTL_CHECK(end && *end == '\0' && timeout_seconds > 0,
              "$VTL_DIST_TIMEOUT='{}' is not a positive number of seconds", text);
  }
  options.timeout = std::chrono::milliseconds(int64_t(timeout_seconds * 1000.0));
  options.store_file = store_file.empty() ? env_or("VTL_DIST_STORE_FILE", "") : store_file;
  options.device = device;
  return options;
}

std::vector<int64_t> rank_share(int64_t begin, int64_t end, int rank, int world) {
  std::vector<int64_t> positions;
  for (int64_t k = begin + rank; k < end; k += world) positions.push_back(k);
  return positions;
}

namespace {

/// A TCPStore that answered a first request within `timeout`: c10d's requests have no
/// deadline for a server that accepts the connection and never answers (another program
/// on MASTER_PORT). The attempt
/// runs on a thread of its own, which is left behind, blocked, when the time is up.
c10::intrusive_ptr<c10d::Store> connect_store(const std::string& host,
                                              const c10d::TCPStoreOptions& store_options,
                                              std::chrono::milliseconds timeout) {
  auto made = std::make_shared<std::promise<c10::intrusive_ptr<c10d::Store>>>();
  auto result = made->get_future();
  std::thread([made, host, store_options] {
    try {
      c10::intrusive_ptr<c10d::Store> store =
          c10::make_intrusive<c10d::TCPStore>(host, store_options);
      // A first request and its answer: what a silent program on the port never gives.
      store->check({"vtl/connected"});
      made->set_value(std::move(store));
    } catch (...) {
      made->set_exception(std::current_exception());
    }
  }).detach();
  if (result.wait_for(timeout) != std::future_status::ready)
    fail(
        "--distributed: no answer from {}:{} within {} s (--dist-timeout): is MASTER_PORT "
        "used by another program?",
        host, store_options.port, timeout.count() / 1000.0);
  return result.get();
}

}  // namespace

// ---------------------------------------------------------------- ProcessGroup

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Collectives> group;
  c10::intrusive_ptr<Collectives> patient;  ///< Gloo, a week's timeout: wait_for_all
};

ProcessGroup::ProcessGroup(LaunchEnv env, GroupOptions options)
    : env_(std::move(env)), options_(std::move(options)), impl_(std::make_unique<Impl>()) {}

ProcessGroup::~ProcessGroup() = default;

std::shared_ptr<ProcessGroup> ProcessGroup::join(const GroupOptions& options) {
  return join(LaunchEnv::from_environment(options.store_file), options);
}

std::shared_ptr<ProcessGroup> ProcessGroup::join(const LaunchEnv& env,
                                                 const GroupOptions& options) {
  VTL_CHECK(options.device == "cpu" || options.device == "cuda",
            "--distributed takes --device cpu or cuda (each rank then uses the GPU of its "
            "LOCAL_RANK), not '{}'",
            options.device);
  std::shared_ptr<ProcessGroup> self(new ProcessGroup(env, options));
  auto& impl = *self->impl_;
  std::string backend = options.backend;
  if (backend == "auto") backend = options.device == "cuda" ? "nccl" : "gloo";
  VTL_CHECK(backend == "gloo" || backend == "nccl",
            "unknown distributed backend '{}': expected gloo or nccl", backend);
  self->backend_ = backend;
  if (options.device == "cuda") {
    VTL_CHECK(torch::cuda::is_available(),
              "--distributed --device cuda: no CUDA device is available to this build of "
              "LibTorch");
    VTL_CHECK(env.local_rank < int(torch::cuda::device_count()),
              "--distributed: LOCAL_RANK {} but this machine has {} GPUs", env.local_rank,
              torch::cuda::device_count());
    self->device_ = torch::Device(torch::kCUDA, c10::DeviceIndex(env.local_rank));
  }

  const std::string where = options.store_file.empty()
                                ? fmt::format("{}:{}", env.master_addr, env.master_port)
                                : options.store_file;
  const auto started = std::chrono::steady_clock::now();
  try {
    if (!options.store_file.empty()) {
      impl.store = c10::make_intrusive<c10d::FileStore>(options.store_file, env.world_size);
    } else {
      c10d::TCPStoreOptions store_options;
      store_options.port = uint16_t(env.master_port);
      store_options.isServer = env.rank == 0 && !env.agent_store;
      store_options.numWorkers = size_t(env.world_size);
      store_options.waitWorkers = false;  // the check-in below waits, with a deadline
      store_options.timeout = options.timeout;
      impl.store = connect_store(env.master_addr, store_options, options.timeout);
    }
    impl.store->setTimeout(options.timeout);
    // The key space torch.distributed uses, so a launcher's store can be shared.
    impl.store = c10::make_intrusive<c10d::PrefixStore>(
        fmt::format("/worker/attempt_{}", env.restart_count), impl.store);
    impl.store = c10::make_intrusive<c10d::PrefixStore>("vtl", impl.store);
    // Every rank checks in before Gloo connects: its connection set-up waits for absent
    // ranks without a deadline.
    int64_t arrived = impl.store->add("joined", 1);
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    while (arrived < env.world_size) {
      VTL_CHECK(std::chrono::steady_clock::now() < deadline,
                "--distributed: rank {} of {} could not join the other ranks at {} within {} s: "
                "{} of {} ranks arrived (is every rank started, with the same MASTER_ADDR, "
                "MASTER_PORT and WORLD_SIZE?)",
                env.rank, env.world_size, where, options.timeout.count() / 1000.0, arrived,
                env.world_size);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      arrived = impl.store->add("joined", 0);
    }

    auto make_gloo = [&](const std::string& prefix, std::chrono::milliseconds timeout) {
      auto gloo = c10d::ProcessGroupGloo::Options::create(timeout);
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (is_loopback(env.master_addr)) {
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      gloo->threads = 2;
      return c10::make_intrusive<c10d::ProcessGroupGloo>(
          c10::make_intrusive<c10d::PrefixStore>(prefix, impl.store), env.rank, env.world_size,
          gloo);
    };
    // The collectives' group connects first, under --dist-timeout: a rank that died after
    // checking in is noticed there, not by the week-long wait of the patient group.
    if (backend == "gloo") {
      impl.group = make_gloo("collectives", options.timeout);
    } else {
#if defined(VTL_WITH_NCCL)
      auto nccl = c10d::ProcessGroupNCCL::Options::create();
      nccl->timeout = options.timeout;
      impl.group = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          c10::make_intrusive<c10d::PrefixStore>("collectives", impl.store), env.rank,
          env.world_size, nccl);
#else
      fail(
          "--distributed with NCCL: this vtl was built against a LibTorch without CUDA; "
          "use --device cpu (Gloo) or rebuild against a CUDA LibTorch");
#endif
    }
    impl.patient = make_gloo("patient", std::chrono::hours(24 * 7));
  } catch (const vtl::Error&) {
    throw;
  } catch (const std::exception& e) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    fail(
        "--distributed: rank {} of {} could not join the other ranks at {} (after {:.1f} s; "
        "--dist-timeout {} s): {} (is every rank started, with the same MASTER_ADDR, "
        "MASTER_PORT and WORLD_SIZE, and is nothing else listening on that port?)",
        env.rank, env.world_size, where, seconds, options.timeout.count() / 1000.0, e.what());
  }
  self->barrier();
  return self;
}

std::string ProcessGroup::describe() const {
  return fmt::format("rank {} of {}", env_.rank, env_.world_size);
}

void ProcessGroup::failed(const char* what, const std::exception& error) const {
  std::string message = error.what();
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&error))
    message = c10_error->what_without_backtrace();
  if (const auto newline = message.find('\n'); newline != std::string::npos)
    message.resize(newline);
  fail(
      "distributed {} failed on {}: {}. Another rank has probably stopped (its own output "
      "says why) or did not answer within {} s (--dist-timeout); this rank stops too",
      what, describe(), message, options_.timeout.count() / 1000.0);
}

void ProcessGroup::allreduce_sum(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes) {
  if (tensors.empty()) return;
  // Buckets of consecutive tensors of one dtype, flattened on this rank's device.
  struct Bucket {
    std::vector<torch::Tensor> members;
    torch::Tensor flat;
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::vector<Bucket> buckets;
  int64_t bytes = 0;
  for (const auto& t : tensors) {
    const int64_t size = t.numel() * int64_t(t.element_size());
    if (buckets.empty() || buckets.back().members.front().scalar_type() != t.scalar_type() ||
        bytes + size > bucket_bytes) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().members.push_back(t);
    bytes += size;
  }
  try {
    for (auto& bucket : buckets) {
      std::vector<torch::Tensor> flat;
      for (const auto& t : bucket.members) flat.push_back(t.reshape({-1}).to(device_));
      bucket.flat = torch::cat(flat);
      std::vector<torch::Tensor> io{bucket.flat};
      bucket.work = impl_->group->allreduce(io);
    }
    for (auto& bucket : buckets) {
      bucket.work->wait();
      int64_t offset = 0;
      for (auto& t : bucket.members) {
        const int64_t n = t.numel();
        torch::NoGradGuard no_grad;
        t.copy_(bucket.flat.slice(0, offset, offset + n).view(t.sizes()));
        offset += n;
      }
    }
  } catch (const vtl::Error&) {
    throw;
  } catch (const std::exception& e) {
    failed("allreduce", e);
  }
}

void ProcessGroup::broadcast(const std::vector<torch::Tensor>& tensors, int root) {
  try {
    c10d::BroadcastOptions options;
    options.rootRank = root;
    for (const auto& t : tensors) {
      std::vector<torch::Tensor> io{t.to(device_).contiguous()};
      impl_->group->broadcast(io, options)->wait();
      torch::NoGradGuard no_grad;
      if (!io[0].is_same(t)) t.copy_(io[0]);
    }
  } catch (const vtl::Error&) {
    throw;
  } catch (const std::exception& e) {
    failed("broadcast", e);
  }
}

std::string ProcessGroup::broadcast_bytes(const std::string& bytes, int root) {
  auto size = torch::tensor({int64_t(rank() == root ? bytes.size() : 0)}, torch::kInt64);
  broadcast({size}, root);
  const int64_t n = size.item<int64_t>();
  auto data = torch::empty({std::max<int64_t>(n, 1)}, torch::kUInt8);
  if (rank() == root && n > 0) std::memcpy(data.data_ptr(), bytes.data(), size_t(n));
  if (n > 0) broadcast({data}, root);
  return std::string(reinterpret_cast<const char*>(data.data_ptr()), size_t(n));
}

torch::Tensor ProcessGroup::gather_strided_rows(const torch::Tensor& local, int64_t rows) {
  const int64_t world = size();
  const int64_t per_rank = (rows + world - 1) / world;
  std::vector<int64_t> shape(local.sizes().begin(), local.sizes().end());
  shape[0] = per_rank;
  auto padded = torch::zeros(shape, local.options().device(device_));
  if (local.size(0) > 0) padded.slice(0, 0, local.size(0)).copy_(local);
  std::vector<std::vector<torch::Tensor>> outputs(1);
  for (int64_t r = 0; r < world; ++r) outputs[0].push_back(torch::empty_like(padded));
  std::vector<torch::Tensor> inputs{padded};
  try {
    impl_->group->allgather(outputs, inputs)->wait();
  } catch (const vtl::Error&) {
    throw;
  } catch (const std::exception& e) {
    failed("allgather", e);
  }
  // [world, per_rank, ...] -> [per_rank, world, ...]: row i = rank i % W, local row i / W.
  auto stacked = torch::stack(outputs[0]).transpose(0, 1).contiguous();
  shape[0] = per_rank * world;
  return stacked.reshape(shape).slice(0, 0, rows).to(local.device());
}

void ProcessGroup::barrier() {
  try {
    impl_->group->barrier()->wait();
  } catch (const vtl::Error&) {
    throw;
  } catch (const std::exception& e) {
    failed("barrier", e);
  }
}

void ProcessGroup::wait_for_all() {
  try {
    impl_->patient->barrier()->wait();
  } catch (const vtl::Error&) {
    throw;
  } catch (const std::exception& e) {
    failed("barrier", e);
  }
}

}  // namespace vtl::dist
