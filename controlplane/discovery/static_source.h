// The static source: the service's configured backend list, delivered once
// through the same interface as the discovered ones so the control plane
// has a single code path.
#pragma once

#include <vector>

#include "discovery/source_base.h"
#include "model/service.h"

namespace sluice::discovery {

class StaticSource final : public SourceBase {
public:
    // `backends` as in model::Service::backends. Owning thread.
    StaticSource(std::vector<model::Backend> backends, uint16_t default_port,
                 UpdateCallback on_update);
    ~StaticSource() override;

    std::string_view kind() const override { return "static"; }

private:
    void run() override;

    std::vector<model::Backend> backends_;
};

}  // namespace sluice::discovery
