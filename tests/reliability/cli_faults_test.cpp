// Bad inputs and faults through the `vtl` binary (docs/reliability.md): NaN in features,
// file names that are not UTF-8, unreadable folders, a full disk, a slow HTTP client.

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "cli/run_cli.h"
#include "embed/sample_images.h"
#include "vtl/core/atomic_file.h"
#include "vtl/embed/npy.h"

namespace vtl::testing {
namespace {

const std::string kExtract = " --model resnet18 --weights random --image-size 64 --batch 8 --json";

/// root/<cat|dog>/<i>.png, small random images.
void make_small_tree(const fs::path& root, int per_class = 3) {
  for (const char* name : {"cat", "dog"}) {
    fs::create_directories(root / name);
    for (int i = 0; i < per_class; ++i) {
      cv::Mat image(24, 32, CV_8UC3);
      cv::randu(image, 0, 255);
      cv::imwrite((root / name / (std::to_string(i) + ".png")).string(), image);
    }
  }
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(ReliabilityCli, NanInFeaturesIsRefusedNamingFileAndRow) {
  TempDir dir("vtl_rel_nan");
  make_small_tree(dir / "data");
  const fs::path features = dir / "features";
  auto run =
      run_cli("extract " + (dir / "data").string() + kExtract + " --out " + features.string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  // Row 2, column 5 becomes NaN (float32 rows of 512 after the header).
  const auto header = embed::read_npy_header(features / "features.npy");
  {
    std::fstream file(features / "features.npy", std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(header.data_offset + (2 * 512 + 5) * 4));
    const float nan = std::numeric_limits<float>::quiet_NaN();
    file.write(reinterpret_cast<const char*>(&nan), sizeof nan);
  }
  const std::string npy = (features / "features.npy").string();
  run = run_cli("classify fit " + features.string() + " --algo logreg --out " +
                (dir / "clf").string());
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_TRUE(contains(run.output, npy + ": row 2 holds NaN or infinite values")) << run.output;
  EXPECT_FALSE(fs::exists(dir / "clf"));
  run =
      run_cli("index build --features " + features.string() + " --out " + (dir / "index").string());
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_TRUE(contains(run.output, npy + ": row 2 holds NaN")) << run.output;
  EXPECT_FALSE(fs::exists(dir / "index" / "index.json"));
}

TEST(ReliabilityCli, NonUtf8FileNameIsNamedAndSkippedOnRequest) {
  TempDir dir("vtl_rel_utf8");
  make_small_tree(dir / "data", 2);
  cv::Mat image(24, 32, CV_8UC3, cv::Scalar(10, 20, 30));
  const std::string odd = std::string("caf\xE9-latin1") + ".png";  // Latin-1, not UTF-8
  cv::imwrite((dir / "data" / "cat" / odd).string(), image);
  auto run =
      run_cli("extract " + (dir / "data").string() + kExtract + " --out " + (dir / "f1").string());
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_TRUE(contains(run.output, "latin1.png")) << run.output;
  EXPECT_TRUE(contains(run.output, "not valid UTF-8")) << run.output;
  run = run_cli("extract " + (dir / "data").string() + kExtract + " --skip-bad --out " +
                (dir / "f2").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(nlohmann::json::parse(run.output).at("rows"), 4);
  EXPECT_TRUE(contains(read_file(dir / "f2" / "skipped.jsonl"), "not valid UTF-8"));
}

TEST(ReliabilityCli, UnreadableFolderInADatasetIsLeftOut) {
  TempDir dir("vtl_rel_unreadable");
  make_small_tree(dir / "data", 2);
  fs::create_directories(dir / "data" / "cat" / "private");
  cv::imwrite((dir / "data" / "cat" / "private" / "x.png").string(),
              cv::Mat(24, 32, CV_8UC3, cv::Scalar(1, 2, 3)));
  fs::permissions(dir / "data" / "cat" / "private", fs::perms::none);
  fs::create_directories(dir / "out");
  fs::permissions(dir / "out", fs::perms::all);
  fs::permissions(dir.path(), fs::perms::all);
  // root reads every folder: run as nobody when the tests run as root.
  std::string user;
  if (::geteuid() == 0) {
    if (run_command("setpriv --reuid=65534 --regid=65534 --clear-groups true") != 0)
      GTEST_SKIP() << "running as root without setpriv: every folder is readable";
    user = "setpriv --reuid=65534 --regid=65534 --clear-groups";
  }
  const std::string command =
      "extract " + (dir / "data").string() + kExtract + " --out " + (dir / "out" / "f").string();
  const std::string environment =
      "HOME=" + (dir / "out").string() + " VTL_HOME=" + (dir / "out").string() + " " + user;
  auto run = run_cli(command, environment);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto summary = nlohmann::json::parse(run.output);
  EXPECT_EQ(summary.at("rows"), 4);
  EXPECT_EQ(summary.at("left_out"), 1);
  // Without --json the user is told which folder was left out and why.
  auto plain = run_cli(
      command.substr(0, command.find(" --json")) + command.substr(command.find(" --json") + 7),
      environment);
  fs::permissions(dir / "data" / "cat" / "private", fs::perms::owner_all);
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_NE(plain.output.find("1 file or folder left out"), std::string::npos) << plain.output;
  EXPECT_NE(plain.output.find("private"), std::string::npos) << plain.output;
}

/// A shell script with two extractions into `features`: a first one that finishes, then,
/// after `before_second` and inside `( limit; ... )`, a second one with other settings
/// and --overwrite. It prints "second exit N" and "unchanged" when the first run's files
/// are byte for byte the same afterwards.
std::string two_runs_script(const fs::path& data, const fs::path& features,
                            const std::string& setup, const std::string& before_second,
                            const std::string& limit) {
  const std::string vtl = std::string("env OMP_WAIT_POLICY=PASSIVE ") + VTL_CLI_PATH;
  const std::string common = " extract " + data.string() + kExtract + " --out " + features.string();
  const std::string files = features.string() + "/*";
  return "bash -c '" + setup + " set -e; " + vtl + common + " --dtype f16 >/dev/null; " +
         "before=$(cat " + files + " | sha256sum); set +e; " + before_second + " (" + limit +
         " exec " + vtl + common + " --dtype f32 --overwrite); echo second exit $?; " +
         "after=$(cat " + files + " | sha256sum); [ \"$before\" = \"$after\" ] && ls " +
         features.string() + "/features.json && echo unchanged'";
}

/// The second run fails with a message naming the disk problem; the first run's files
/// are unchanged.
void expect_failed_write_keeps_earlier_features(const std::string& script) {
  std::string output;
  const int status = run_command(script, &output);
  EXPECT_EQ(status, 0) << output;
  EXPECT_TRUE(contains(output, "second exit 1")) << output;
  EXPECT_TRUE(contains(output, "No space left on device") || contains(output, "File too large"))
      << output;
  EXPECT_TRUE(contains(output, "unchanged")) << output;
}

TEST(ReliabilityFullDisk, FullTmpfsKeepsEarlierFeatures) {
  TempDir dir("vtl_rel_tmpfs");
  make_small_tree(dir / "data");
  fs::create_directories(dir / "mnt");
  if (run_command("unshare -m sh -c 'mount -t tmpfs -o size=1m tmpfs " + (dir / "mnt").string() +
                  "'") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root and mount namespaces)";
  const fs::path mnt = dir / "mnt";
  // Inside a private mount namespace: a 1 MiB tmpfs, the first run, then a filler file
  // that takes every free block before the second run.
  expect_failed_write_keeps_earlier_features(
      "unshare -m " +
      two_runs_script(
          dir / "data", mnt / "features", "mount -t tmpfs -o size=1m tmpfs " + mnt.string() + ";",
          "dd if=/dev/zero of=" + (mnt / "filler").string() + " bs=4k 2>/dev/null;", ""));
}

TEST(ReliabilityFullDisk, FileSizeLimitKeepsEarlierFeatures) {
  TempDir dir("vtl_rel_fsize");
  make_small_tree(dir / "data");
  // RLIMIT_FSIZE of 4 KiB with SIGXFSZ ignored: a write past it fails with EFBIG, like a
  // full disk, without privileges. The f32 chunk (6 x 512 x 4 bytes) does not fit.
  expect_failed_write_keeps_earlier_features(
      two_runs_script(dir / "data", dir / "features", "trap \"\" XFSZ;", "", "ulimit -f 4;"));
}

}  // namespace
}  // namespace vtl::testing
