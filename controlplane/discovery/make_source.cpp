// make_source: the one place that maps a service's config to its source.
#include <fstream>
#include <sstream>
#include <type_traits>

#include "discovery/dns_source.h"
#include "discovery/etcd_source.h"
#include "discovery/file_source.h"
#include "discovery/source.h"
#include "discovery/static_source.h"

namespace sluice::discovery {
namespace {

// The etcd password, read once when the source is made so a wrong path is
// refused at start-up rather than discovered on the first reconnect.
Result<std::string> read_password(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return make_error("cannot read etcd password_file " + path);
    }
    std::ostringstream text;
    text << in.rdbuf();
    std::string password = text.str();
    while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) {
        password.pop_back();  // editors add a final newline; etcd passwords rarely end in one
    }
    return password;
}

}  // namespace

Result<std::unique_ptr<Source>> make_source(const model::Service& service, UpdateCallback on_update,
                                            const SourceOptions& options)
{
    const uint16_t vip_port = service.vip.port;
    if (!service.discovery) {
        return std::unique_ptr<Source>(
            std::make_unique<StaticSource>(service.backends, vip_port, std::move(on_update)));
    }
    return std::visit(
        [&](const auto& d) -> Result<std::unique_ptr<Source>> {
            using T = std::decay_t<decltype(d)>;
            if constexpr (std::is_same_v<T, model::FileDiscovery>) {
                return std::unique_ptr<Source>(
                    std::make_unique<FileSource>(d.path, vip_port, std::move(on_update), options));
            } else if constexpr (std::is_same_v<T, model::EtcdDiscovery>) {
                std::string password;
                if (d.username && d.password_file) {
                    auto read = read_password(*d.password_file);
                    if (!read) {
                        return make_error("service " + service.name + ": " + read.error());
                    }
                    password = std::move(*read);
                }
                return std::unique_ptr<Source>(std::make_unique<EtcdSource>(
                    d, std::move(password), vip_port, std::move(on_update), options));
            } else {
                static_assert(std::is_same_v<T, model::DnsDiscovery>);
                // SRV records carry their own ports; A/AAAA use discovery.port.
                return std::unique_ptr<Source>(std::make_unique<DnsSource>(
                    d, d.port.value_or(vip_port), std::move(on_update), options));
            }
        },
        *service.discovery);
}

}  // namespace sluice::discovery
