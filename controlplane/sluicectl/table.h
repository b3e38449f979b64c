// Aligned text tables and the small human formats (durations, counts)
// sluicectl prints when --json is not given.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::ctl {

// Columns are as wide as their widest cell (counted in UTF-8 code points)
// and separated by two spaces; right-aligned columns suit numbers. The last
// column is not padded, so lines carry no trailing blanks. All-empty
// headers print no header line (key/value lists). Not thread-safe.
class Table {
public:
    explicit Table(std::vector<std::string> headers);

    void align_right(size_t column);
    void add_row(std::vector<std::string> cells);  // missing cells print empty
    std::string render() const;

private:
    std::vector<std::string> headers_;
    std::vector<bool> right_;
    std::vector<std::vector<std::string>> rows_;
};

// "1h02m03s", "45s", "12.5ms" — for uptimes and publish times.
std::string human_duration(double seconds);

}  // namespace sluice::ctl
