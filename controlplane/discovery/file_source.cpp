// The file source's worker: inotify on the directory, a short settle delay
// so a burst of events costs one read, and keep-last-good on any failure.
#include "discovery/file_source.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "discovery/file_format.h"

namespace sluice::discovery {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

FileSource::FileSource(std::string path, uint16_t default_port, UpdateCallback on_update,
                       const SourceOptions& options)
    : SourceBase(std::move(on_update), default_port), path_(std::move(path)), options_(options)
{
    const auto slash = path_.rfind('/');
    dir_ = slash == std::string::npos ? "." : (slash == 0 ? "/" : path_.substr(0, slash));
    name_ = slash == std::string::npos ? path_ : path_.substr(slash + 1);
}

FileSource::~FileSource() { stop(); }

bool FileSource::watch_directory(int inotify_fd)
{
    // CLOSE_WRITE: written in place; MOVED_TO: renamed over (atomic update);
    // DELETE/MOVED_FROM: gone. IN_CREATE is left out: a new file is empty
    // until its writer closes it, and reading it then would report a
    // spurious error. DELETE_SELF/MOVE_SELF: the directory itself went.
    watch_ = ::inotify_add_watch(inotify_fd, dir_.c_str(),
                                 IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                     IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
    return watch_ >= 0;
}

void FileSource::reload()
{
    std::ifstream in(path_, std::ios::binary);
    if (!in) {
        const int err = errno;
        fail(path_ + ": " + (err == ENOENT ? "file is missing (deleted?)" : std::strerror(err)) +
             "; keeping the last good backend set");
        return;
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        fail(path_ + ": read error; keeping the last good backend set");
        return;
    }
    auto entries = parse_backend_file(text.str(), path_);
    if (!entries) {
        fail(entries.error() + "; keeping the last good backend set");
        return;
    }
    accept(BackendSet{std::move(*entries), ++serial_});
}

void FileSource::run()
{
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        fail(std::string("inotify_init1: ") + std::strerror(errno));
        // Without inotify the file is still read, once; the status says why
        // it will not follow changes.
        reload();
        sleep_for(std::chrono::hours(24 * 365));
        return;
    }
    bool watching = watch_directory(fd);
    reload();
    if (!watching) {
        note_error(dir_ + ": cannot watch directory: " + std::strerror(errno));
    }

    std::optional<steady_clock::time_point> reload_at;
    alignas(inotify_event) char buffer[16 * 1024];
    while (!stopping()) {
        int timeout = -1;
        const auto now = steady_clock::now();
        if (reload_at) {
            timeout = static_cast<int>(
                std::max<int64_t>(0, std::chrono::duration_cast<milliseconds>(*reload_at - now).count()));
        }
        if (!watching) {
            timeout = timeout < 0 ? static_cast<int>(options_.file_rewatch.count())
                                  : std::min<int>(timeout, static_cast<int>(options_.file_rewatch.count()));
        }
        pollfd fds[2] = {{wake_fd().fd(), POLLIN, 0}, {fd, POLLIN, 0}};
        const int n = ::poll(fds, 2, timeout);
        if (n < 0 && errno != EINTR) {
            fail(std::string("poll: ") + std::strerror(errno));
            sleep_for(options_.file_rewatch);
            continue;
        }
        if (fds[0].revents & POLLIN) {
            wake_fd().drain();
            continue;  // the loop condition sees stopping()
        }
        if (fds[1].revents & POLLIN) {
            ssize_t len;
            while ((len = ::read(fd, buffer, sizeof buffer)) > 0) {
                for (ssize_t off = 0; off < len;) {
                    const auto* ev = reinterpret_cast<const inotify_event*>(buffer + off);
                    off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
                    if (!(ev->mask & IN_Q_OVERFLOW) && (!watching || ev->wd != watch_)) {
                        continue;  // left over from a watch already replaced (its IN_IGNORED)
                    }
                    if (ev->mask & IN_Q_OVERFLOW) {
                        reload_at = steady_clock::now() + options_.file_settle;
                    } else if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
                        // The directory went away: the file is gone with it.
                        if (watching) {
                            ::inotify_rm_watch(fd, watch_);
                        }
                        watching = false;
                        fail(dir_ + ": directory removed or moved; keeping the last good backend set");
                    } else if ((ev->mask & IN_MOVED_TO) || (ev->len > 0 && name_ == ev->name)) {
                        // Any rename into the directory counts: the path may
                        // be a symlink through a swapped one (Kubernetes
                        // ConfigMaps rename "..data"). An unrelated rename
                        // costs one read and no delivery (same backends).
                        reload_at = steady_clock::now() + options_.file_settle;
                    }
                }
            }
        }
        if (!watching && watch_directory(fd)) {
            watching = true;
            reload_at = steady_clock::now();
        }
        if (reload_at && steady_clock::now() >= *reload_at) {
            reload_at.reset();
            reload();
        }
    }
    ::close(fd);
}

}  // namespace sluice::discovery
