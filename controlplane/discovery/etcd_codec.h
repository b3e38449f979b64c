// Small codecs the etcd JSON gateway needs: base64 for keys and values,
// the range_end that turns a key into a prefix range, and a splitter that
// cuts a streamed HTTP body into whole JSON messages.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::discovery {

std::string base64_encode(std::string_view bytes);
// Decodes standard base64 (padding optional); nullopt on a bad character.
std::optional<std::string> base64_decode(std::string_view text);

// The smallest key greater than every key starting with `prefix` (etcd's
// clientv3.GetPrefixRangeEnd): the last byte below 0xff incremented, the
// rest dropped; "\0" (= to the end of the keyspace) if all bytes are 0xff.
std::string prefix_range_end(std::string_view prefix);

// The gateway streams watch responses as JSON objects one after another
// (newline-separated in practice) in HTTP chunks that need not align with
// them. feed() appends bytes and returns every object now complete, by
// brace depth outside strings, so a message split across chunks waits for
// its end. Not thread-safe; one per stream.
class JsonObjectSplitter {
public:
    std::vector<std::string> feed(std::string_view bytes);
    size_t buffered() const { return buffer_.size(); }

private:
    std::string buffer_;
    size_t scanned_ = 0;  // bytes of buffer_ already scanned
    size_t start_ = 0;    // where the current object began
    int depth_ = 0;
    bool in_string_ = false;
    bool escaped_ = false;
};

}  // namespace sluice::discovery
