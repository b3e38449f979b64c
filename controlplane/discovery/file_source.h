// The file source: a JSON backend list (format in file_format.h) re-read
// whenever it changes. It watches the file's directory with inotify, not
// the file, so the usual atomic update (write a temp file, rename it over
// the old one) is seen: a watch on the file itself would stay on the old,
// unlinked inode. A symlink is followed when read, but only renames in
// the path's own directory are watched: a symlink swap there is seen (the
// Kubernetes ConfigMap layout), an edit of a target elsewhere is not.
#pragma once

#include <string>

#include "discovery/source_base.h"

namespace sluice::discovery {

class FileSource final : public SourceBase {
public:
    // `path` absolute. Owning thread.
    FileSource(std::string path, uint16_t default_port, UpdateCallback on_update,
               const SourceOptions& options);
    ~FileSource() override;

    std::string_view kind() const override { return "file"; }

private:
    void run() override;
    // Reads and parses the file; accept() or fail(). Worker thread.
    void reload();
    // (Re)creates the directory watch; false if the directory is missing.
    bool watch_directory(int inotify_fd);

    std::string path_;
    std::string dir_;
    std::string name_;
    SourceOptions options_;
    int watch_ = -1;
    uint64_t serial_ = 0;
};

}  // namespace sluice::discovery
