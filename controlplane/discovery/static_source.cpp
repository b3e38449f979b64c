// The static source: converts the configured backends once and then idles
// until stop(), so its lifetime looks like every other source's.
#include "discovery/static_source.h"

namespace sluice::discovery {

StaticSource::StaticSource(std::vector<model::Backend> backends, uint16_t default_port,
                           UpdateCallback on_update)
    : SourceBase(std::move(on_update), default_port), backends_(std::move(backends))
{
}

StaticSource::~StaticSource() { stop(); }

void StaticSource::run()
{
    std::vector<BackendEntry> entries;
    entries.reserve(backends_.size());
    for (const auto& b : backends_) {
        entries.push_back(BackendEntry{b.address, b.port.value_or(0), b.weight,
                                       b.state == model::BackendState::kDraining});
    }
    // The config loader already refused duplicates; this keeps the contract
    // even for a model built by hand.
    auto canonical = canonical_backends(std::move(entries));
    if (!canonical) {
        fail("static backends: " + canonical.error());
    } else {
        accept(BackendSet{std::move(*canonical), 1});
    }
    while (!sleep_for(std::chrono::hours(1))) {
    }
}

}  // namespace sluice::discovery
