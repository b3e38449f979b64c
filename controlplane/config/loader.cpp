// The loader's entry points: parse with toml++, read every section into the
// model, run the cross-section checks, and return all findings at once.
//
// toml++ is used in its exception mode (the distribution's libtomlplusplus
// is built that way, see meson.build); parse_error and anything else thrown
// are caught here, so no exception leaves the loader.
#include "config/loader.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "config/digest.h"
#include "config/sections.h"

namespace sluice::config {
namespace {

using detail::Context;

void read_document(Context& ctx, const toml::table& root, model::Config& config)
{
    detail::TableReader top(ctx, root, table_schema(""));
    detail::read_daemon(ctx, root, config.daemon);
    const toml::node* dataplane_type = detail::read_dataplane(ctx, root, config.dataplane);
    detail::read_network(ctx, root, config.network);
    detail::read_conntrack(ctx, root, config.timeouts);
    const toml::node* global_rules = nullptr;
    if (const toml::table* filter = top.table("filter")) {
        global_rules = detail::read_filter(ctx, *filter, "filter", config.filter);
    }

    std::vector<detail::ServiceNodes> nodes;
    if (const toml::node* services = top.node("service")) {
        if (services->is_table()) {
            ctx.error(services->source(), "'service' must be written [[service]] (double brackets), once per service");
        } else if (const toml::array* list = detail::read_array(ctx, *services, "service")) {
            for (size_t index = 0; index < list->size(); ++index) {
                const toml::node& element = (*list)[index];
                const toml::table* table = detail::read_table(ctx, element, detail::element_name("service", index));
                if (table == nullptr) continue;
                // Every service enters the model, even a broken one, so the
                // checks across services still see its valid parts.
                detail::read_service(ctx, *table, config.services.emplace_back(), nodes.emplace_back());
            }
        }
    }
    if (config.services.empty() && !top.has("service")) {
        ctx.warning(root.source(), "no [[service]] defined: sluiced would balance nothing");
    }
    detail::check_across_sections(ctx, config, nodes, dataplane_type, global_rules, root);
}

LoadResult finish(Context& ctx, std::optional<model::Config> config)
{
    LoadResult result;
    const bool failed = ctx.has_errors();
    result.diagnostics = ctx.take_sorted();
    if (!failed) result.config = std::move(config);
    return result;
}

}  // namespace

LoadResult load_string(std::string_view text, std::string_view source_name)
{
    Context ctx{std::string(source_name)};
    try {
        const toml::table root = toml::parse(text, source_name);
        model::Config config;
        read_document(ctx, root, config);
        return finish(ctx, std::move(config));
    } catch (const toml::parse_error& e) {
        // toml++ stops at the first syntax error: nothing after it has a
        // meaning to check, so this is the one case with a single diagnostic.
        ctx.error(e.source(), "TOML syntax: " + std::string(e.description()));
    } catch (const std::exception& e) {
        ctx.error_without_position(std::string("internal error while loading: ") + e.what());
    }
    return finish(ctx, std::nullopt);
}

LoadResult load_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        Context ctx{path};
        ctx.error_without_position(std::string("cannot open: ") + std::strerror(errno));
        return finish(ctx, std::nullopt);
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        Context ctx{path};
        ctx.error_without_position(std::string("cannot read: ") + std::strerror(errno));
        return finish(ctx, std::nullopt);
    }
    const std::string bytes = text.str();
    LoadResult out = load_string(bytes, path);
    out.sha256 = sha256_hex(bytes);
    return out;
}

}  // namespace sluice::config
