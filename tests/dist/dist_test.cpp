// Data-parallel `vtl train --distributed` and `vtl extract --distributed`: two `vtl`
// processes on 127.0.0.1 over Gloo against one process doing the same work.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <chrono>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_cli.h"
#include "train/clipart_fixture.h"
#include "train/run_folder.h"
#include "vtl/core/atomic_file.h"
#include "vtl/dist/process_group.h"
#include "vtl/embed/extract.h"
#include "vtl/weights/safetensors.h"

namespace vtl {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using vtl::testing::run_cli;
using vtl::testing::TempDir;

/// A TCP port nobody listens on right now.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

/// One `vtl` process of a job, started in the background with torchrun's variables.
struct Rank {
  pid_t pid = -1;
  fs::path log;
  int exit_code = -1;
  Clock::time_point ended;

  void start(const std::string& arguments, const std::string& environment,
             const fs::path& log_file) {
    log = log_file;
    const std::string command =
        environment + " exec " + VTL_CLI_PATH + " " + arguments + " > " + log.string() + " 2>&1";
    pid = ::fork();
    if (pid == 0) {
      ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  void wait() {
    int status = 0;
    ::waitpid(pid, &status, 0);
    ended = Clock::now();
    exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string output() const {
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
};

/// Runs `vtl <arguments>` as ranks 0..world-1 of one job (extra[r] goes to rank r's
/// environment) and waits for all of them.
std::vector<Rank> run_ranks(const std::string& arguments, int world, const fs::path& logs,
                            const std::vector<std::string>& extra = {}) {
  const int port = free_port();
  std::vector<Rank> ranks(static_cast<size_t>(world));
  for (int r = 0; r < world; ++r) {
    const std::string environment = "OMP_NUM_THREADS=1 RANK=" + std::to_string(r) +
                                    " LOCAL_RANK=" + std::to_string(r) +
                                    " WORLD_SIZE=" + std::to_string(world) +
                                    " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) +
                                    " " + (size_t(r) < extra.size() ? extra[size_t(r)] : "");
    ranks[size_t(r)].start(
        arguments, environment,
        logs / ("rank" + std::to_string(r) + "_" + std::to_string(port) + ".log"));
  }
  for (auto& rank : ranks) rank.wait();
  return ranks;
}

using vtl::testing::read_metrics;

class DistTrain : public ::testing::Test {
 protected:
  void SetUp() override {
    VTL_REQUIRE_CLIPART();
    // 3 classes x 8 images, 2 per class validate: 18 training and 6 validation images.
    vtl::testing::make_clipart_set(data_.path(), {"animals", "geography", "shapes"}, 8);
  }
  std::string train_args(const std::string& strategy_args, const fs::path& out) const {
    return "train " + data_.path().string() +
           " --model resnet18 --weights random --img-size 32 --no-augment --dropout 0 --seed 3 "
           "--val-split 0.25 "
           "--workers 1 --quiet " +
           strategy_args + " --out " + out.string();
  }
  /// The same training alone and as 2 ranks: the same weights and metrics.
  void expect_same_training(const std::string& strategy_args) {
    const fs::path one = runs_.path() / "one", two = runs_.path() / "two";
    auto single = run_cli(train_args(strategy_args, one), "OMP_NUM_THREADS=2");
    ASSERT_EQ(single.exit_code, 0) << single.output;
    auto ranks = run_ranks(train_args(strategy_args, two) + " --distributed --dist-timeout 20", 2,
                           runs_.path());
    for (const auto& rank : ranks) ASSERT_EQ(rank.exit_code, 0) << rank.output();
    EXPECT_EQ(ranks[1].output(), "");  // rank 0 alone prints
    EXPECT_NE(ranks[0].output().find("validation: top-1"), std::string::npos) << ranks[0].output();

    const auto a = weights::load_safetensors(one / "model.safetensors");
    const auto b = weights::load_safetensors(two / "model.safetensors");
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [name, tensor] : a) {
      ASSERT_TRUE(b.count(name)) << name;
      // Two ranks sum a gradient in another order than one process; Adam's step divides by
      // the gradient's own size, so a near-zero element may move by a few 1e-5 of a 1e-3 step
      // differently. A rank whose share were lost would differ by whole steps.
      EXPECT_TRUE(torch::allclose(tensor, b.at(name), 1e-4, 5e-5))
          << name << " differs by " << (tensor - b.at(name)).abs().max().item<double>();
    }
    const auto ma = read_metrics(one), mb = read_metrics(two);
    ASSERT_EQ(ma.size(), mb.size());
    ASSERT_FALSE(ma.empty());
    for (size_t e = 0; e < ma.size(); ++e) {
      for (const char* key : {"train_loss", "train_acc", "val_loss", "val_acc", "lr"})
        EXPECT_NEAR(ma[e][key].get<double>(), mb[e][key].get<double>(), 1e-4)
            << "epoch " << e + 1 << " " << key;
    }
    EXPECT_TRUE(fs::exists(two / "report.html"));
    EXPECT_TRUE(fs::exists(two / "checkpoint" / "last.pt"));
  }
  TempDir data_{"vtl_dist_data"};
  TempDir runs_{"vtl_dist_runs"};
};

TEST(DistSampler, RankSharesAreDisjointAndCoverTheBatch) {
  EXPECT_EQ(dist::rank_share(8, 17, 0, 2), (std::vector<int64_t>{8, 10, 12, 14, 16}));
  EXPECT_EQ(dist::rank_share(8, 17, 1, 2), (std::vector<int64_t>{9, 11, 13, 15}));
  EXPECT_EQ(dist::rank_share(16, 17, 1, 2), std::vector<int64_t>{});
  EXPECT_EQ(dist::rank_share(0, 3, 0, 1), (std::vector<int64_t>{0, 1, 2}));
}

// features: the head trains from cached features; batch 17 of 18 images leaves rank 1 an
// empty share in each epoch's last step.
TEST_F(DistTrain, FeaturesOnTwoRanksReachTheWeightsOfOneProcess) {
  expect_same_training("--strategy features --epochs 2 --batch-size 17");
}

// finetune without the feature cache: both phases through the loader (phase 1 under
// NoGradGuard, phase 2 with layer4's last 4 layers trainable).
TEST_F(DistTrain, FinetuneOnTwoRanksReachesTheWeightsOfOneProcess) {
  expect_same_training(
      "--strategy finetune --epochs 1 --finetune-epochs 1 --unfreeze 4 --finetune-lr 1e-3 "
      "--batch-size 8 --cache-features off");
}

// Killed in phase 2 and resumed on 2 ranks: the metrics and weights of an uninterrupted
// 2-rank run (rank 0's checkpoint and run.json reach rank 1 over the process group).
TEST_F(DistTrain, AResumedRunEndsLikeAnUninterruptedOne) {
  const std::string args =
      "--strategy finetune --epochs 1 --finetune-epochs 2 --unfreeze 4 --finetune-lr 1e-3 "
      "--batch-size 8";
  const fs::path whole = runs_.path() / "whole", killed = runs_.path() / "killed";
  for (const auto& rank : run_ranks(train_args(args, whole) + " --distributed", 2, runs_.path()))
    ASSERT_EQ(rank.exit_code, 0) << rank.output();
  // 3 steps per epoch: step 5 is in epoch 2, after epoch 1's checkpoint.
  auto interrupted = run_ranks(train_args(args, killed) + " --distributed", 2, runs_.path(),
                               {"", "VTL_TEST_KILL_AFTER_STEPS=5"});
  EXPECT_EQ(interrupted[0].exit_code, 1) << interrupted[0].output();
  ASSERT_EQ(read_metrics(killed).size(), 1u);
  for (const auto& rank :
       run_ranks("train --quiet --distributed --resume " + killed.string(), 2, runs_.path()))
    ASSERT_EQ(rank.exit_code, 0) << rank.output();

  const auto a = read_metrics(whole), b = read_metrics(killed);
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  for (size_t e = 0; e < a.size(); ++e) {
    for (const char* key : {"train_loss", "train_acc", "val_loss", "val_acc", "lr"})
      EXPECT_EQ(a[e][key].get<double>(), b[e][key].get<double>()) << "epoch " << e + 1 << key;
  }
  const auto wa = weights::load_safetensors(whole / "model.safetensors");
  const auto wb = weights::load_safetensors(killed / "model.safetensors");
  for (const auto& [name, tensor] : wa) EXPECT_TRUE(torch::equal(tensor, wb.at(name))) << name;
}

TEST_F(DistTrain, AKilledRankStopsTheOtherWithinTheTimeout) {
  const fs::path out = runs_.path() / "killed";
  const auto start = Clock::now();
  auto ranks = run_ranks(train_args("--strategy features --epochs 20 --batch-size 2", out) +
                             " --distributed --dist-timeout 10",
                         2, runs_.path(), {"", "VTL_TEST_KILL_AFTER_STEPS=3"});
  EXPECT_EQ(ranks[1].exit_code, -1);  // SIGKILL
  EXPECT_EQ(ranks[0].exit_code, 1) << ranks[0].output();
  const double after_kill = std::chrono::duration<double>(ranks[0].ended - ranks[1].ended).count();
  EXPECT_LT(after_kill, 12.0) << ranks[0].output();
  const std::string output = ranks[0].output();
  EXPECT_NE(output.find("rank 0 of 2"), std::string::npos) << output;
  EXPECT_NE(output.find("Another rank has probably stopped"), std::string::npos) << output;
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 60.0);
}

// Ranks started with other settings (another --batch-size crashed Gloo; another --seed
// split the data otherwise) stop at once, the differing rank naming the setting.
TEST_F(DistTrain, RanksStartedWithOtherSettingsStopAndSayWhich) {
  const int port = free_port();
  std::vector<Rank> ranks(2);
  for (int r = 0; r < 2; ++r) {
    ranks[size_t(r)].start(
        train_args(r == 0 ? "--epochs 1 --batch-size 8" : "--epochs 1 --batch-size 16",
                   runs_.path() / "mixed") +
            " --distributed --dist-timeout 20",
        "OMP_NUM_THREADS=1 RANK=" + std::to_string(r) + " LOCAL_RANK=" + std::to_string(r) +
            " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port),
        runs_.path() / ("mixed" + std::to_string(r) + ".log"));
  }
  for (auto& rank : ranks) rank.wait();
  EXPECT_EQ(ranks[0].exit_code, 1) << ranks[0].output();
  EXPECT_EQ(ranks[1].exit_code, 1) << ranks[1].output();
  EXPECT_NE(ranks[1].output().find("rank 1 was started with other settings than rank 0: "
                                   "batch_size 16 (rank 0: 8)"),
            std::string::npos)
      << ranks[1].output();
  EXPECT_NE(ranks[0].output().find("1 other rank(s) were started with other settings"),
            std::string::npos)
      << ranks[0].output();
  EXPECT_FALSE(fs::exists(runs_.path() / "mixed" / "checkpoint"));
}

// Another program on MASTER_PORT that takes connections and never answers: the joining
// rank gives up after --dist-timeout instead of waiting for it.
TEST_F(DistTrain, ASilentProgramOnThePortIsGivenUpOnAfterTheTimeout) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(listener, 8), 0);  // the kernel completes connections; no one answers
  socklen_t length = sizeof(address);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  const auto start = Clock::now();
  auto joined =
      run_cli(train_args("--epochs 1", runs_.path() / "silent") + " --distributed --dist-timeout 2",
              "RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
                  std::to_string(ntohs(address.sin_port)));
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  ::close(listener);
  EXPECT_EQ(joined.exit_code, 1) << joined.output;
  EXPECT_NE(joined.output.find("no answer from 127.0.0.1:"), std::string::npos) << joined.output;
  EXPECT_LT(seconds, 20.0);
}

TEST_F(DistTrain, ARankWithoutPartnersGivesUpAfterTheTimeout) {
  const int port = free_port();
  const auto start = Clock::now();
  auto alone =
      run_cli(train_args("--epochs 1", runs_.path() / "alone") + " --distributed --dist-timeout 2",
              "RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port));
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_EQ(alone.exit_code, 1);
  EXPECT_NE(alone.output.find("could not join the other ranks"), std::string::npos) << alone.output;
  EXPECT_LT(seconds, 30.0);

  auto unset = run_cli(train_args("--epochs 1", runs_.path() / "unset") + " --distributed",
                       "env -u RANK -u WORLD_SIZE");
  EXPECT_EQ(unset.exit_code, 1);
  EXPECT_NE(unset.output.find("torchrun"), std::string::npos) << unset.output;
}

TEST(DistExtract, TwoRanksWriteWhatOneProcessWrites) {
  VTL_REQUIRE_CLIPART();
  TempDir dir("vtl_dist_extract");
  vtl::testing::make_clipart_set(dir.path() / "data", {"animals", "shapes"}, 5);
  const std::string common = "extract " + (dir.path() / "data").string() +
                             " --model resnet18 --weights random --image-size 32 --batch 3";
  auto single = run_cli(common + " --out " + (dir.path() / "one").string(), "OMP_NUM_THREADS=2");
  ASSERT_EQ(single.exit_code, 0) << single.output;
  // The ranks meet through a FileStore here (the TCPStore is covered by the training tests),
  // named by the option alone: no MASTER_ADDR.
  const fs::path store = dir.path() / "store";
  auto ranks = run_ranks(common + " --json --distributed --dist-store-file " + store.string() +
                             " --out " + (dir.path() / "two").string(),
                         2, dir.path(), {"MASTER_ADDR=", "MASTER_ADDR="});
  for (const auto& rank : ranks) ASSERT_EQ(rank.exit_code, 0) << rank.output();
  EXPECT_EQ(nlohmann::json::parse(ranks[0].output()).at("rows"), 10);
  EXPECT_EQ(ranks[1].output(), "");
  EXPECT_FALSE(fs::exists(dir.path() / "two" / ".ranks"));

  const auto a = embed::load_features(dir.path() / "one"),
             b = embed::load_features(dir.path() / "two");
  ASSERT_EQ(a.features.sizes(), b.features.sizes());
  // The ranks run with other thread counts, so other summation orders: equal up to float
  // rounding (a 2.6e-6 difference was seen on features near 0.3).
  const double scale = std::max(1.0, a.features.abs().max().item<double>());
  EXPECT_LE((a.features - b.features).abs().max().item<double>(), 1e-5 * scale);
  EXPECT_EQ(a.items, b.items);
  EXPECT_EQ(read_file(dir.path() / "one" / "manifest.jsonl"),
            read_file(dir.path() / "two" / "manifest.jsonl"));

  // Rank 1 killed once its shard is done: rank 0's merged result is whole, and it says so
  // with status 0 rather than the lost connection's error.
  auto lost = run_ranks(common + " --json --distributed --out " + (dir.path() / "three").string(),
                        2, dir.path(), {"", "VTL_FAULT_KILL_AT=distributed-extract:shard-done"});
  EXPECT_EQ(lost[1].exit_code, -1);  // SIGKILL
  ASSERT_EQ(lost[0].exit_code, 0) << lost[0].output();
  EXPECT_EQ(nlohmann::json::parse(lost[0].output()).at("rows"), 10);
  EXPECT_EQ(read_file(dir.path() / "one" / "manifest.jsonl"),
            read_file(dir.path() / "three" / "manifest.jsonl"));
}

}  // namespace
}  // namespace vtl
