// Table layout: widths first, then one pass writing padded cells.
#include "sluicectl/table.h"

#include <algorithm>
#include <cstdio>

namespace sluice::ctl {
namespace {

size_t display_width(const std::string& text)
{
    // Count code points, not bytes, so "—" or a UTF-8 name pads correctly.
    return static_cast<size_t>(
        std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

}  // namespace

Table::Table(std::vector<std::string> headers) : headers_(std::move(headers)), right_(headers_.size(), false) {}

void Table::align_right(size_t column)
{
    if (column < right_.size()) right_[column] = true;
}

void Table::add_row(std::vector<std::string> cells)
{
    cells.resize(headers_.size());
    rows_.push_back(std::move(cells));
}

std::string Table::render() const
{
    std::vector<size_t> widths(headers_.size(), 0);
    for (size_t c = 0; c < headers_.size(); ++c) widths[c] = display_width(headers_[c]);
    for (const auto& row : rows_) {
        for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], display_width(row[c]));
    }
    std::string out;
    auto line = [&](const std::vector<std::string>& cells) {
        std::string text;
        for (size_t c = 0; c < cells.size(); ++c) {
            const size_t pad = widths[c] - display_width(cells[c]);
            const bool last = c + 1 == cells.size();
            if (c != 0) text += "  ";
            if (right_[c]) text.append(pad, ' ');
            text += cells[c];
            if (!right_[c] && !last) text.append(pad, ' ');
        }
        while (!text.empty() && text.back() == ' ') text.pop_back();
        out += text;
        out += '\n';
    };
    // A table of only empty headers is a key/value list: no header line.
    if (std::any_of(headers_.begin(), headers_.end(), [](const std::string& h) { return !h.empty(); })) line(headers_);
    for (const auto& row : rows_) line(row);
    return out;
}

std::string human_duration(double seconds)
{
    char text[48];
    if (seconds < 1.0) {
        std::snprintf(text, sizeof(text), "%.1fms", seconds * 1000.0);
        return text;
    }
    auto whole = static_cast<uint64_t>(seconds);
    const uint64_t days = whole / 86400;
    const uint64_t hours = whole / 3600 % 24;
    const uint64_t minutes = whole / 60 % 60;
    const uint64_t secs = whole % 60;
    if (days > 0) {
        std::snprintf(text, sizeof(text), "%llud%02lluh%02llum", static_cast<unsigned long long>(days),
                      static_cast<unsigned long long>(hours), static_cast<unsigned long long>(minutes));
    } else if (hours > 0) {
        std::snprintf(text, sizeof(text), "%lluh%02llum%02llus", static_cast<unsigned long long>(hours),
                      static_cast<unsigned long long>(minutes), static_cast<unsigned long long>(secs));
    } else if (minutes > 0) {
        std::snprintf(text, sizeof(text), "%llum%02llus", static_cast<unsigned long long>(minutes),
                      static_cast<unsigned long long>(secs));
    } else {
        std::snprintf(text, sizeof(text), "%.1fs", seconds);
    }
    return text;
}

}  // namespace sluice::ctl
