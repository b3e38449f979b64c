// The schema, the typo suggestions, and docs/configuration.md agree: every
// key the loader accepts is documented and every documented key exists.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "config/schema.h"
#include "test_env.h"

namespace sluice::config {
namespace {

std::string read_text(const std::string& path)
{
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Every accepted key appears in the reference as `dotted.path`, so the doc cannot fall behind.
TEST(ConfigSchema, EveryKeyIsDocumented)
{
    const std::string doc = read_text(sluice::testing::source_path("docs/configuration.md"));
    ASSERT_FALSE(doc.empty()) << "docs/configuration.md not found";
    const std::vector<std::string> keys = schema_key_paths();
    ASSERT_GT(keys.size(), 80u);  // guards against an empty schema making this pass
    for (const std::string& key : keys) {
        EXPECT_NE(doc.find("| `" + key + "` |"), std::string::npos) << "undocumented key: " << key;
    }
}

// Every key row in the reference names a key the loader accepts, so the doc cannot promise more.
TEST(ConfigSchema, EveryDocumentedKeyExists)
{
    std::istringstream doc(read_text(sluice::testing::source_path("docs/configuration.md")));
    const std::vector<std::string> keys = schema_key_paths();
    size_t rows = 0;
    for (std::string line; std::getline(doc, line);) {
        if (line.rfind("| `", 0) != 0) continue;
        const size_t end = line.find('`', 3);
        const std::string key = line.substr(3, end - 3);
        ++rows;
        EXPECT_NE(std::find(keys.begin(), keys.end(), key), keys.end()) << "documented but not accepted: " << key;
    }
    EXPECT_EQ(rows, keys.size());
}

// Typos one swap or one letter away are caught; unrelated words get no suggestion.
TEST(ConfigSchema, ClosestMatch)
{
    const std::vector<std::string_view> keys = {"table_size", "vip", "port", "protocol"};
    EXPECT_EQ(edit_distance("tabel_size", "table_size"), 1u);
    EXPECT_EQ(closest_match("tabel_size", keys), "table_size");
    EXPECT_EQ(closest_match("prot", keys), "port");
    EXPECT_EQ(closest_match("Protocol", keys), "protocol");
    EXPECT_FALSE(closest_match("backends", keys).has_value());
}

}  // namespace
}  // namespace sluice::config
