// make_source: the one place that maps a service's config to its source.
#include <type_traits>

#include "discovery/file_source.h"
#include "discovery/source.h"
#include "discovery/static_source.h"

namespace sluice::discovery {

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
            } else {
                return make_error("service " + service.name + ": this discovery type is not built yet");
            }
        },
        *service.discovery);
}

}  // namespace sluice::discovery
