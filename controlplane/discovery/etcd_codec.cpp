// base64, prefix range ends and the streamed-JSON splitter for the etcd source.
#include "discovery/etcd_codec.h"

#include <array>
#include <cstdint>

namespace sluice::discovery {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int decode_char(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;  // '-' and '_': the URL-safe alphabet too
    if (c == '/' || c == '_') return 63;
    return -1;
}

}  // namespace

std::string base64_encode(std::string_view bytes)
{
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                           uint8_t(bytes[i + 2]);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += kAlphabet[v & 63];
    }
    if (i + 1 == bytes.size()) {
        const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += "==";
    } else if (i + 2 == bytes.size()) {
        const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text)
{
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (const char c : text) {
        if (c == '=') {
            break;
        }
        const int v = decode_char(c);
        if (v < 0) {
            return std::nullopt;
        }
        acc = (acc << 6) | uint32_t(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += char((acc >> bits) & 0xff);
        }
    }
    return out;
}

std::string prefix_range_end(std::string_view prefix)
{
    std::string end(prefix);
    while (!end.empty()) {
        auto& last = reinterpret_cast<unsigned char&>(end.back());
        if (last < 0xff) {
            ++last;
            return end;
        }
        end.pop_back();
    }
    return std::string(1, '\0');
}

std::vector<std::string> JsonObjectSplitter::feed(std::string_view bytes)
{
    std::vector<std::string> out;
    buffer_.append(bytes);
    for (; scanned_ < buffer_.size(); ++scanned_) {
        const char c = buffer_[scanned_];
        if (in_string_) {
            if (escaped_) {
                escaped_ = false;
            } else if (c == '\\') {
                escaped_ = true;
            } else if (c == '"') {
                in_string_ = false;
            }
            continue;
        }
        if (c == '"') {
            in_string_ = true;
        } else if (c == '{' || c == '[') {
            if (depth_++ == 0) {
                start_ = scanned_;
            }
        } else if ((c == '}' || c == ']') && depth_ > 0) {
            if (--depth_ == 0) {
                out.push_back(buffer_.substr(start_, scanned_ + 1 - start_));
            }
        }
    }
    if (depth_ == 0) {
        // Only separators remain; drop them so the buffer stays small.
        buffer_.clear();
        scanned_ = 0;
        start_ = 0;
    } else if (start_ > 0) {
        // Keep only the unfinished object.
        buffer_.erase(0, start_);
        scanned_ -= start_;
        start_ = 0;
    }
    return out;
}

}  // namespace sluice::discovery
