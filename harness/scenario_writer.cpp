// format_scenario: a Scenario back as the text of docs/scenario-language.md.
// Exploration writes its reproducers with it; the round-trip tests
// (tests/scenario_writer_test.cpp) hold it to parse_scenario.
#include "harness/scenario.h"

#include <string>
#include <variant>

namespace eagain::harness {

namespace {

std::string result_text(const FaultRule& rule) {
    switch (rule.fault) {
        case FaultKind::short_transfer: return "short " + format_size(rule.short_limit_bytes);
        case FaultKind::eagain: return "EAGAIN";
        case FaultKind::eintr: return "EINTR";
        case FaultKind::econnreset: return "ECONNRESET";
        case FaultKind::epipe: return "EPIPE";
        case FaultKind::econnrefused: return "ECONNREFUSED";
        case FaultKind::etimedout: return "ETIMEDOUT";
        case FaultKind::econnaborted: return "ECONNABORTED";
        case FaultKind::emfile: return "EMFILE";
    }
    return "?";  // LCOV_EXCL_LINE: the switch names every kind
}

std::string selector_text(const FaultRule& rule) {
    switch (rule.when) {
        case CallSelector::every_call: return "always";
        case CallSelector::nth_call: return "call " + std::to_string(rule.call_number);
        case CallSelector::every_kth_call: return "every " + std::to_string(rule.call_number);
        case CallSelector::from_nth_call: return "from " + std::to_string(rule.call_number);
        case CallSelector::at_stream_offset: return "offset " + format_size(rule.stream_offset_bytes);
        case CallSelector::with_probability:
            return "chance " + std::to_string(rule.chance_numerator) + "/" + std::to_string(rule.chance_denominator);
        case CallSelector::call_list: return "calls " + format_number_list(rule.call_list);
    }
    return "?";  // LCOV_EXCL_LINE: the switch names every selector
}

// "A->B", with * for any host.
std::string direction(const std::string& from, const std::string& to) {
    return (from.empty() ? "*" : from) + "->" + (to.empty() ? "*" : to);
}

std::string port_text(std::uint16_t port) {
    return port == 0 ? std::string() : " port " + std::to_string(port);
}

// The keys of `link` that differ from `base`.
std::string link_text(const sim::LinkOptions& link, const sim::LinkOptions& base) {
    std::string text;
    if (link.latency != base.latency)
        text += " latency " + format_duration(link.latency);
    if (link.jitter != base.jitter)
        text += " jitter " + format_duration(link.jitter);
    if (link.mss != base.mss)
        text += " mss " + std::to_string(link.mss);
    return text;
}

struct NetFaultText {
    std::string operator()(const sim::ResetFault& f) const {
        std::string text = "net reset " + f.host + port_text(f.port);
        text += f.at_received_offset >= 0 ? " offset " + format_size(static_cast<std::uint64_t>(f.at_received_offset))
                                          : " at " + format_duration(f.at);
        return f.one_sided ? text + " one-sided" : text;
    }
    std::string operator()(const sim::ZeroWindowFault& f) const {
        return "net zero-window " + f.host + port_text(f.port) + " at " + format_duration(f.start) + " for " +
               format_duration(f.duration);
    }
    std::string operator()(const sim::ReorderFault& f) const {
        const sim::ReorderFault defaults;
        std::string text = "net reorder " + direction(f.from, f.to);
        text += f.held_segments.empty() ? " chance " + std::to_string(f.numerator) + "/" + std::to_string(f.denominator)
                                        : " segments " + format_number_list(f.held_segments);
        if (f.hold_back != defaults.hold_back)
            text += " hold " + format_duration(f.hold_back);
        if (f.start != defaults.start)
            text += " at " + format_duration(f.start);
        if (f.duration != defaults.duration)
            text += " for " + format_duration(f.duration);
        return text;
    }
    std::string operator()(const sim::DelayFault& f) const {
        const sim::DelayFault defaults;
        std::string text = "net delay " + direction(f.from, f.to) + " extra " + format_duration(f.extra);
        if (f.start != defaults.start)
            text += " at " + format_duration(f.start);
        if (f.duration != defaults.duration)
            text += " for " + format_duration(f.duration);
        return text;
    }
    std::string operator()(const sim::PartitionFault& f) const {
        return "net partition " + f.a + " " + f.b + " at " + format_duration(f.start) + " for " +
               format_duration(f.duration);
    }
};

}  // namespace

std::string format_number_list(const std::vector<std::uint64_t>& numbers) {
    std::string text;
    for (const std::uint64_t n : numbers)
        text += (text.empty() ? "" : ",") + std::to_string(n);
    return text;
}

std::string format_syscall_fault(const SyscallFaultSpec& fault) {
    const FaultRule& rule = fault.rule;
    std::string text = "fault " + fault.host + " " + std::string(to_string(rule.call)) + " " + selector_text(rule);
    if (rule.fd.has_value())
        text += " fd " + std::to_string(*rule.fd);
    if (rule.max_hits.has_value())
        text += " times " + std::to_string(*rule.max_hits);
    return text + " -> " + result_text(rule);
}

std::string format_net_fault(const NetFault& fault) {
    return std::visit(NetFaultText{}, fault);
}

std::string format_expectation(const ExpectSpec& expectation) {
    std::string text = "expect";
    if (!expectation.app.empty())
        text += " " + expectation.app;
    text += " " + expectation.what;
    for (const std::string& argument : expectation.arguments)
        text += " " + argument;
    return text;
}

std::string format_scenario(const Scenario& scenario) {
    std::string out;
    const auto line = [&out](const std::string& text) { out += text + "\n"; };
    if (scenario.seed != 1)
        line("seed " + std::to_string(scenario.seed));
    if (const std::string network = link_text(scenario.network, sim::LinkOptions{}); !network.empty())
        line("network" + network);

    const sim::TcpOptions tcp_defaults;
    std::string tcp;
    if (scenario.tcp.send_buffer_bytes != tcp_defaults.send_buffer_bytes)
        tcp += " send-buffer " + format_size(static_cast<std::uint64_t>(scenario.tcp.send_buffer_bytes));
    if (scenario.tcp.receive_buffer_bytes != tcp_defaults.receive_buffer_bytes)
        tcp += " receive-buffer " + format_size(static_cast<std::uint64_t>(scenario.tcp.receive_buffer_bytes));
    if (scenario.tcp.rto_min != tcp_defaults.rto_min)
        tcp += " rto-min " + format_duration(scenario.tcp.rto_min);
    if (scenario.tcp.retries != tcp_defaults.retries)
        tcp += " retries " + std::to_string(scenario.tcp.retries);
    if (scenario.tcp.syn_retries != tcp_defaults.syn_retries)
        tcp += " syn-retries " + std::to_string(scenario.tcp.syn_retries);
    if (!tcp.empty())
        line("tcp" + tcp);

    const sim::HostOptions host_defaults;
    for (const HostSpec& host : scenario.hosts) {
        std::string text = "host " + host.name;
        if (host.options.edge_mode == sim::EdgeMode::transition_only)
            text += " edge strict";
        if (host.options.fd_limit != host_defaults.fd_limit)
            text += " fd-limit " + std::to_string(host.options.fd_limit);
        line(text);
    }
    // A link starts from the network's options, so all three are written
    // only where they differ from those.
    for (const LinkSpec& link : scenario.links)
        line("link " + link.a + " " + link.b + link_text(link.link, scenario.network));
    for (const AppSpec& app : scenario.apps) {
        std::string text = "app " + app.host + " " + app.kind;
        for (const auto& [key, value] : app.options)
            text += " " + key + " " + value;
        line(text);
    }
    for (const SyscallFaultSpec& fault : scenario.syscall_faults)
        line(format_syscall_fault(fault));
    for (const NetFaultSpec& fault : scenario.net_faults)
        line(format_net_fault(fault.fault));
    for (const ActionSpec& action : scenario.actions)
        line("at " + format_duration(action.at) + " " + action.app + " " + action.action);
    for (const ExpectSpec& e : scenario.expectations)
        line(format_expectation(e));
    return out;
}

}  // namespace eagain::harness
