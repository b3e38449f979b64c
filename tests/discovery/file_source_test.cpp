// The file and static sources against a real directory with inotify: atomic
// replace, partial and invalid writes, deletion, and the file format's
// positioned errors.
#include <gtest/gtest.h>

#include "discovery/file_format.h"
#include "discovery/source.h"
#include "support.h"

namespace sluice::discovery {
namespace {

using namespace testing;
using namespace std::chrono_literals;

constexpr auto kBound = 3000ms;  // generous: inotify + 20 ms settle takes ~25 ms

const char* const kTwo = R"({
  "backends": [
    {"address": "10.0.0.2", "port": 8080, "weight": 50},
    {"address": "10.0.0.1", "state": "draining"}
  ]
})";
const char* const kThree = R"({"backends": [
  {"address": "10.0.0.1"}, {"address": "10.0.0.2"}, {"address": "2001:db8::3", "weight": 7}
]})";

model::Service file_service(const std::string& path)
{
    model::Service s;
    s.name = "t";
    s.vip.port = 443;
    s.discovery = model::FileDiscovery{path};
    return s;
}

SourceOptions fast_options()
{
    SourceOptions o;
    o.file_rewatch = 100ms;
    return o;
}

// The format's errors carry file:line:col for syntax and file:line for an entry.
TEST(FileFormat, ErrorsArePositioned)
{
    auto truncated = parse_backend_file("{\n  \"backends\": [\n    {\"address\": \"10.0.0.1\"", "/b.json");
    ASSERT_FALSE(truncated);
    EXPECT_EQ(truncated.error().rfind("/b.json:3:", 0), 0u) << truncated.error();

    auto bad = parse_backend_file("{\"backends\": [\n {\"address\": \"10.0.0.1\"},\n {\"address\": \"x\"}]}", "/b.json");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().rfind("/b.json:3: backends[1]: 'address'", 0), 0u) << bad.error();

    auto typo = parse_backend_file(R"({"backends": [{"address": "10.0.0.1", "wieght": 5}]})", "/b.json");
    ASSERT_FALSE(typo);
    EXPECT_NE(typo.error().find("unknown key 'wieght'"), std::string::npos) << typo.error();

    auto dup = parse_backend_file(R"({"backends": [{"address": "10.0.0.1"}, {"address": "10.0.0.1"}]})", "/b.json");
    ASSERT_FALSE(dup);
    EXPECT_NE(dup.error().find("10.0.0.1 appears twice"), std::string::npos) << dup.error();

    auto weight = parse_backend_file(R"({"backends": [{"address": "10.0.0.1", "weight": 0}]})", "/b.json");
    EXPECT_FALSE(weight);
    auto empty = parse_backend_file("", "/b.json");
    ASSERT_FALSE(empty);
    EXPECT_NE(empty.error().find("empty"), std::string::npos);
    EXPECT_TRUE(parse_backend_file(R"({"backends": []})", "/b.json"));
}

// The static source delivers the configured list once, sorted, with the VIP port filled in.
TEST(StaticSource, DeliversConfiguredBackendsOnce)
{
    model::Service s;
    s.vip.port = 80;
    s.backends.push_back({*model::parse_ip_address("10.0.0.9"), std::nullopt, 5, model::BackendState::kActive});
    s.backends.push_back({*model::parse_ip_address("10.0.0.1"), 8080, 100, model::BackendState::kDraining});
    Recorder rec;
    auto src = make_source(s, rec.callback());
    ASSERT_TRUE(src) << src.error();
    EXPECT_EQ((*src)->kind(), "static");
    ASSERT_TRUE((*src)->start());
    ASSERT_TRUE(rec.wait_for_text("10.0.0.1:8080 w=100 draining 10.0.0.9:80 w=5", kBound));
    EXPECT_EQ((*src)->status().state, SourceState::kOk);
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(rec.count(), 1u);
    (*src)->stop();
}

// Initial read, then an atomic replace (temp + rename) is picked up via the directory watch.
TEST(FileSource, AtomicReplaceIsPickedUp)
{
    TempDir dir;
    const std::string path = dir.path() + "/backends.json";
    write_file(path, kTwo);
    Recorder rec;
    auto src = make_source(file_service(path), rec.callback(), fast_options());
    ASSERT_TRUE(src) << src.error();
    ASSERT_TRUE((*src)->start());
    ASSERT_TRUE(rec.wait_for_text("10.0.0.1:443 w=100 draining 10.0.0.2:8080 w=50", kBound)) << rec.last_text();
    EXPECT_EQ((*src)->status().state, SourceState::kOk);
    EXPECT_EQ((*src)->status().revision, 1u);

    replace_file(path, kThree);
    ASSERT_TRUE(rec.wait_for_text("10.0.0.1:443 w=100 10.0.0.2:443 w=100 [2001:db8::3]:443 w=7", kBound))
        << rec.last_text();
    EXPECT_EQ((*src)->status().backend_count, 3u);
    EXPECT_EQ(rec.count(), 2u);
    EXPECT_TRUE(rec.delivered_from_one_worker_thread());

    // Rewriting the same content confirms the set without a new delivery.
    const auto before = *(*src)->status().last_update;
    replace_file(path, kThree);
    ASSERT_TRUE(wait_until([&] { return *(*src)->status().last_update > before; }, kBound));
    EXPECT_EQ(rec.count(), 2u);
    (*src)->stop();
}

// A file truncated mid-write keeps the old set, says stale with file:line:col, and recovers.
TEST(FileSource, PartialWriteKeepsOldSet)
{
    TempDir dir;
    const std::string path = dir.path() + "/backends.json";
    write_file(path, kTwo);
    Recorder rec;
    auto src = make_source(file_service(path), rec.callback(), fast_options());
    ASSERT_TRUE(src && (*src)->start());
    ASSERT_TRUE(wait_until([&] { return rec.count() == 1; }, kBound));
    const std::string good = rec.last_text();

    write_file(path, std::string(kThree).substr(0, 40));  // in place, cut short
    ASSERT_TRUE(wait_until([&] { return (*src)->status().state == SourceState::kStale; }, kBound));
    const auto st = (*src)->status();
    EXPECT_EQ(st.last_error.rfind(path + ":2:", 0), 0u) << st.last_error;
    EXPECT_NE(st.last_error.find("keeping the last good"), std::string::npos) << st.last_error;
    EXPECT_EQ(rec.count(), 1u);
    EXPECT_EQ(rec.last_text(), good);

    write_file(path, kThree);
    ASSERT_TRUE(wait_until([&] { return (*src)->status().state == SourceState::kOk; }, kBound));
    EXPECT_EQ(rec.count(), 2u);
    (*src)->stop();
}

// Well-formed JSON with a bad entry is refused as a whole, with the entry's line.
TEST(FileSource, InvalidContentKeepsOldSet)
{
    TempDir dir;
    const std::string path = dir.path() + "/backends.json";
    write_file(path, kTwo);
    Recorder rec;
    auto src = make_source(file_service(path), rec.callback(), fast_options());
    ASSERT_TRUE(src && (*src)->start());
    ASSERT_TRUE(wait_until([&] { return rec.count() == 1; }, kBound));

    replace_file(path, "{\"backends\": [\n  {\"address\": \"10.0.0.1\"},\n  {\"address\": \"10.0.0.7\", \"weight\": 20000}\n]}");
    ASSERT_TRUE(wait_until([&] { return (*src)->status().state == SourceState::kStale; }, kBound));
    EXPECT_EQ((*src)->status().last_error.rfind(path + ":3: backends[1]: 'weight'", 0), 0u)
        << (*src)->status().last_error;
    EXPECT_EQ(rec.count(), 1u);
    EXPECT_EQ((*src)->status().backend_count, 2u);
    (*src)->stop();
}

// Deleting the file keeps the last good set (stale); recreating it resumes.
TEST(FileSource, DeleteIsStaleNotEmpty)
{
    TempDir dir;
    const std::string path = dir.path() + "/backends.json";
    write_file(path, kTwo);
    Recorder rec;
    auto src = make_source(file_service(path), rec.callback(), fast_options());
    ASSERT_TRUE(src && (*src)->start());
    ASSERT_TRUE(wait_until([&] { return rec.count() == 1; }, kBound));

    std::filesystem::remove(path);
    ASSERT_TRUE(wait_until([&] { return (*src)->status().state == SourceState::kStale; }, kBound));
    EXPECT_NE((*src)->status().last_error.find("missing"), std::string::npos);
    EXPECT_EQ(rec.count(), 1u);
    EXPECT_EQ(rec.last().backends.size(), 2u);

    replace_file(path, kThree);
    ASSERT_TRUE(wait_until([&] { return (*src)->status().state == SourceState::kOk; }, kBound));
    EXPECT_EQ(rec.last().backends.size(), 3u);
    (*src)->stop();
}

// No file at start is an error (no set yet), not an empty pool; the file appearing fixes it.
TEST(FileSource, MissingAtStartIsErrorUntilCreated)
{
    TempDir dir;
    const std::string path = dir.path() + "/backends.json";
    Recorder rec;
    auto src = make_source(file_service(path), rec.callback(), fast_options());
    ASSERT_TRUE(src && (*src)->start());
    ASSERT_TRUE(wait_until([&] { return (*src)->status().state == SourceState::kError; }, kBound));
    EXPECT_EQ(rec.count(), 0u);
    replace_file(path, kTwo);
    ASSERT_TRUE(wait_until([&] { return rec.count() == 1; }, kBound));
    EXPECT_EQ((*src)->status().state, SourceState::kOk);
    (*src)->stop();
}

// A Kubernetes ConfigMap-style update is seen: the path is a symlink through "..data",
// and the update renames a new "..data" symlink over the old one.
TEST(FileSource, SymlinkSwapIsPickedUp)
{
    namespace fs = std::filesystem;
    TempDir dir;
    const std::string d = dir.path();
    fs::create_directory(d + "/..v1");
    write_file(d + "/..v1/backends.json", kTwo);
    fs::create_directory_symlink("..v1", d + "/..data");
    fs::create_symlink("..data/backends.json", d + "/backends.json");
    Recorder rec;
    auto src = make_source(file_service(d + "/backends.json"), rec.callback(), fast_options());
    ASSERT_TRUE(src && (*src)->start());
    ASSERT_TRUE(wait_until([&] { return rec.count() == 1; }, kBound));

    fs::create_directory(d + "/..v2");
    write_file(d + "/..v2/backends.json", kThree);
    fs::create_directory_symlink("..v2", d + "/..data_tmp");
    fs::rename(d + "/..data_tmp", d + "/..data");
    EXPECT_TRUE(wait_until([&] { return rec.last().backends.size() == 3; }, kBound)) << rec.last_text();
    (*src)->stop();
}

// The directory itself removed and recreated: stale, then the rewatch picks the new file up.
TEST(FileSource, DirectoryRecreatedIsRewatched)
{
    TempDir dir;
    const std::string sub = dir.path() + "/d";
    std::filesystem::create_directory(sub);
    const std::string path = sub + "/backends.json";
    write_file(path, kTwo);
    Recorder rec;
    auto src = make_source(file_service(path), rec.callback(), fast_options());
    ASSERT_TRUE(src && (*src)->start());
    ASSERT_TRUE(wait_until([&] { return rec.count() == 1; }, kBound));
    std::filesystem::remove_all(sub);
    ASSERT_TRUE(wait_until([&] { return (*src)->status().state == SourceState::kStale; }, kBound));
    std::filesystem::create_directory(sub);
    replace_file(path, kThree);
    ASSERT_TRUE(wait_until([&] { return rec.last().backends.size() == 3; }, kBound));
    (*src)->stop();
}

}  // namespace
}  // namespace sluice::discovery
