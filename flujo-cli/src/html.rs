//! `flujo cost --format html`: one self-contained page (inline CSS and SVG, no script, no
//! network: its Content-Security-Policy forbids every fetch) with the period's spend over time
//! by model, pipeline and step, tokens by type, the top steps by cost, unpriced calls, and the
//! exact totals. Every drawn amount carries its exact value in `data-nanos`, so that what the
//! page shows can be checked against the ledger.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use flujo_runtime::cost::{CostGroup, CostReport, Date, GroupBy};
use flujo_runtime::{TokenUsage, Usd};

/// Colours of the series, in order (then again).
const PALETTE: [&str; 8] = [
    "#3b6fd4", "#e07b39", "#3aa57a", "#c8475a", "#8a63c9", "#b59a2b", "#2b9fb5", "#7a7a7a",
];

/// The most series a chart draws apart; the rest are summed as "other".
const MAX_SERIES: usize = 7;
/// Steps the "top steps" table lists.
const TOP_STEPS: usize = 10;

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The exact amount, every nano-dollar.
fn exact(cost: Usd) -> String {
    format!("{cost:.9}")
}

/// Every day of the period, so that a day without calls is a gap, not missing.
fn days(report: &CostReport) -> Vec<Date> {
    let first = report
        .start_date
        .or_else(|| report.by_day.keys().next().copied());
    let last = report
        .end_date
        .or_else(|| report.by_day.keys().next_back().copied());
    let (Some(mut day), Some(last)) = (first, last) else {
        return Vec::new();
    };
    let mut all = Vec::new();
    // A report of years is drawn by its days with calls only.
    if (last - day).whole_days() > 366 {
        return report.by_day.keys().copied().collect();
    }
    while day <= last {
        all.push(day);
        match day.next_day() {
            Some(next) => day = next,
            None => break,
        }
    }
    all
}

/// The series of a chart by `by`: the largest by cost apart, the rest as "other".
fn series(report: &CostReport, by: GroupBy) -> Vec<(String, BTreeMap<Date, Usd>)> {
    // Unpriced calls cost nothing here and are drawn nowhere (their cost is unknown, not
    // zero): the "Unpriced calls" section lists them.
    let mut totals: Vec<(&String, &CostGroup)> = report
        .groups(by)
        .iter()
        .filter(|(_, group)| group.cost > Usd::ZERO)
        .collect();
    totals.sort_by(|a, b| b.1.cost.cmp(&a.1.cost).then_with(|| a.0.cmp(b.0)));
    let daily = report.daily(by);
    let kept: Vec<&String> = totals.iter().take(MAX_SERIES).map(|(k, _)| *k).collect();
    let mut out: Vec<(String, BTreeMap<Date, Usd>)> = kept
        .iter()
        .map(|key| ((*key).clone(), BTreeMap::new()))
        .collect();
    let mut other: BTreeMap<Date, Usd> = BTreeMap::new();
    for (day, groups) in &daily {
        for (key, group) in groups.iter().filter(|(_, group)| group.cost > Usd::ZERO) {
            let target = match kept.iter().position(|k| *k == key) {
                Some(i) => &mut out[i].1,
                None => &mut other,
            };
            *target.entry(*day).or_default() += group.cost;
        }
    }
    if totals.len() > MAX_SERIES {
        out.push(("other".to_owned(), other));
    }
    out
}

/// A stacked bar chart of the daily spend by `by`.
fn spend_chart(out: &mut String, report: &CostReport, by: GroupBy, what: &str) {
    let days = days(report);
    let series = series(report, by);
    let (width, height, left, bottom, top) = (720.0_f64, 260.0_f64, 64.0, 28.0, 12.0);
    let max = days
        .iter()
        .map(|day| report.by_day.get(day).copied().unwrap_or_default().nanos())
        .max()
        .unwrap_or(0)
        .max(1);
    let plot = height - bottom - top;
    let slot = (width - left - 8.0) / days.len().max(1) as f64;
    let bar = (slot * 0.8).max(1.0);
    let _ = write!(
        out,
        "<figure><svg class=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" \
         aria-label=\"Spend per day by {what}\" data-chart=\"{what}\">"
    );
    // Axis: zero and the largest day.
    for (value, label) in [(0, Usd::ZERO), (max, Usd::from_nanos(max))] {
        let y = top + plot - plot * value as f64 / max as f64;
        let _ = write!(
            out,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/>\
             <text x=\"{}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{}</text>",
            width - 8.0,
            left - 6.0,
            y + 4.0,
            escape(&label.to_string())
        );
    }
    for (i, day) in days.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = top + plot;
        for (s, (key, values)) in series.iter().enumerate() {
            let Some(cost) = values.get(day).copied().filter(|c| *c > Usd::ZERO) else {
                continue;
            };
            let h = plot * cost.nanos() as f64 / max as f64;
            y -= h;
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" \
                 fill=\"{}\" data-day=\"{day}\" data-key=\"{}\" data-nanos=\"{}\">\
                 <title>{day} {}: {}</title></rect>",
                PALETTE[s % PALETTE.len()],
                escape(key),
                cost.nanos(),
                escape(key),
                exact(cost)
            );
        }
        // Day labels: all of a short period, else about eight.
        if days.len() <= 10 || i % days.len().div_ceil(8) == 0 {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{}\" class=\"axis\" text-anchor=\"middle\">{}</text>",
                x + bar / 2.0,
                height - 8.0,
                &day.to_string()[5..]
            );
        }
    }
    out.push_str("</svg><figcaption class=\"legend\">");
    for (s, (key, values)) in series.iter().enumerate() {
        let total: Usd = values.values().copied().sum();
        let _ = write!(
            out,
            "<span><i style=\"background:{}\"></i>{} <b>{}</b></span>",
            PALETTE[s % PALETTE.len()],
            escape(key),
            escape(&total.to_string())
        );
    }
    out.push_str("</figcaption></figure>");
}

/// Horizontal bars of the tokens by type.
fn tokens_chart(out: &mut String, tokens: &TokenUsage) {
    let kinds = [
        (
            "uncached input",
            "input_uncached",
            tokens.input.saturating_sub(tokens.cache_read_input),
        ),
        ("cache read", "cache_read_input", tokens.cache_read_input),
        ("cache write", "cache_write_input", tokens.cache_write_input),
        ("output", "output", tokens.output),
        ("reasoning", "reasoning_output", tokens.reasoning_output),
    ];
    let max = kinds.iter().map(|k| k.2).max().unwrap_or(0).max(1);
    let (width, row) = (720.0_f64, 30.0_f64);
    let left = 170.0;
    let _ = write!(
        out,
        "<figure><svg class=\"chart\" viewBox=\"0 0 {width} {}\" role=\"img\" \
         aria-label=\"Tokens by type\" data-chart=\"tokens\">",
        row * kinds.len() as f64 + 8.0
    );
    for (i, (label, kind, count)) in kinds.iter().enumerate() {
        let y = 4.0 + row * i as f64;
        let w = (width - left - 110.0) * *count as f64 / max as f64;
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{label}</text>\
             <rect x=\"{left}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\" \
             data-token-type=\"{kind}\" data-tokens=\"{count}\"><title>{label}: {count}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\">{count}</text>",
            left - 8.0,
            y + row * 0.55,
            row * 0.7,
            PALETTE[i],
            left + w + 6.0,
            y + row * 0.55,
        );
    }
    out.push_str(
        "</svg><figcaption class=\"legend\">Uncached input plus cache reads is the input; \
         reasoning is part of the output.</figcaption></figure>",
    );
}

fn number_cells(group: &CostGroup) -> String {
    let t = &group.tokens;
    format!(
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td class=\"cost\" data-nanos=\"{}\">{}</td>",
        group.requests,
        t.input,
        t.cache_read_input,
        t.output,
        group.unpriced_requests,
        group.cost.nanos(),
        // Unpriced is unknown, never $0: "unknown", or the priced part and what it leaves out.
        group.cost_text(Some(9))
    )
}

/// The exact totals by `by`, and the whole period's.
fn totals_table(out: &mut String, report: &CostReport, by: GroupBy, what: &str) {
    let _ = write!(
        out,
        "<div class=\"scroll\"><table data-table=\"totals-{what}\"><thead><tr><th>{what}</th>\
         <th>requests</th><th>input</th><th>cached</th><th>output</th><th>unpriced</th>\
         <th>cost (USD)</th></tr></thead><tbody>"
    );
    for (key, group) in report.groups(by) {
        let _ = write!(
            out,
            "<tr data-key=\"{}\"><th>{}</th>{}</tr>",
            escape(key),
            escape(key),
            number_cells(group)
        );
    }
    let _ = write!(
        out,
        "</tbody><tfoot><tr data-key=\"total\"><th>total</th>{}</tr></tfoot></table></div>",
        number_cells(&report.totals())
    );
}

const STYLE: &str = "\
:root{color-scheme:light;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2430;background:#f6f7f9}\
body{margin:0 auto;max-width:980px;padding:16px}\
header{display:flex;flex-wrap:wrap;gap:12px;align-items:baseline;justify-content:space-between}\
h1{font-size:1.35rem;margin:0}h2{font-size:1.05rem;margin:0 0 8px}\
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:10px;margin:14px 0}\
.kpi{background:#fff;border-radius:8px;padding:10px 12px;box-shadow:0 1px 2px #0001}\
.kpi b{display:block;font-size:1.3rem}.kpi span{color:#5b6472;font-size:.85rem}\
section{background:#fff;border-radius:8px;padding:12px 14px;margin:12px 0;box-shadow:0 1px 2px #0001}\
figure{margin:0}svg.chart{width:100%;height:auto;display:block}\
.grid{stroke:#d9dde3;stroke-width:1}.axis{font-size:11px;fill:#5b6472}\
.legend{display:flex;flex-wrap:wrap;gap:6px 14px;font-size:.85rem;margin-top:6px}\
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}\
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.88rem}\
th,td{padding:5px 8px;border-bottom:1px solid #e5e8ec;text-align:right;white-space:nowrap}\
th:first-child{text-align:left}tfoot th,tfoot td{font-weight:600;border-top:2px solid #c9ced6}\
.none{color:#5b6472}\
@media (max-width:560px){body{padding:10px}.kpi b{font-size:1.1rem}.axis{font-size:22px}th,td{padding:4px 6px}}";

/// The page of `report`.
pub fn render(report: &CostReport) -> String {
    let period = match (report.start_date, report.end_date) {
        (Some(start), Some(end)) => format!("{start} to {end}"),
        _ => "all days".to_owned(),
    };
    let unpriced: u64 = report.unpriced_requests.values().sum();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>flujo cost report, {period}</title><style>{STYLE}</style></head><body>\
         <header><h1>Model spend, {period} (UTC)</h1><span class=\"none\">from the flujo cost ledger</span></header>\
         <div class=\"kpis\">\
         <div class=\"kpi\"><span>total cost</span><b data-total-nanos=\"{}\">{}</b></div>\
         <div class=\"kpi\"><span>model calls</span><b data-requests=\"{}\">{}</b></div>\
         <div class=\"kpi\"><span>tokens</span><b>{}</b></div>\
         <div class=\"kpi\"><span>unpriced calls</span><b data-unpriced=\"{unpriced}\">{unpriced}</b></div></div>",
        report.total_cost.nanos(),
        escape(&report.totals().cost_text(None)),
        report.requests,
        report.requests,
        report.totals().tokens.total(),
    );
    for (by, what) in [
        (GroupBy::Model, "model"),
        (GroupBy::Pipeline, "pipeline"),
        (GroupBy::Step, "step"),
    ] {
        let _ = write!(out, "<section><h2>Spend per day by {what}</h2>");
        spend_chart(&mut out, report, by, what);
        out.push_str("</section>");
    }
    out.push_str("<section><h2>Tokens by type</h2>");
    tokens_chart(&mut out, &report.totals().tokens);
    out.push_str("</section><section><h2>Top steps by cost</h2>");
    let mut steps: Vec<(&String, &CostGroup)> = report.groups(GroupBy::Step).iter().collect();
    steps.sort_by(|a, b| b.1.cost.cmp(&a.1.cost).then_with(|| a.0.cmp(b.0)));
    out.push_str(
        "<div class=\"scroll\"><table data-table=\"top-steps\"><thead><tr><th>step</th>\
         <th>requests</th><th>share</th><th>cost (USD)</th></tr></thead><tbody>",
    );
    let total = report.total_cost.nanos().max(1);
    for (step, group) in steps.into_iter().take(TOP_STEPS) {
        let _ = write!(
            out,
            "<tr data-key=\"{}\"><th>{}</th><td>{}</td><td>{:.1}%</td>\
             <td class=\"cost\" data-nanos=\"{}\">{}</td></tr>",
            escape(step),
            escape(step),
            group.requests,
            group.cost.nanos() as f64 * 100.0 / total as f64,
            group.cost.nanos(),
            exact(group.cost)
        );
    }
    out.push_str("</tbody></table></div></section><section><h2>Unpriced calls</h2>");
    if report.unpriced_requests.is_empty() {
        out.push_str("<p class=\"none\">Every call had a price.</p>");
    } else {
        out.push_str(
            "<p>Their cost is unknown, not zero: it is in no total here. Add the models to \
             your price file (FLUJO_PRICING_FILE).</p><div class=\"scroll\"><table \
             data-table=\"unpriced\"><thead><tr><th>model</th><th>calls</th></tr></thead><tbody>",
        );
        for (model, calls) in &report.unpriced_requests {
            let _ = write!(
                out,
                "<tr data-key=\"{}\"><th>{}</th><td data-calls=\"{calls}\">{calls}</td></tr>",
                escape(model),
                escape(model)
            );
        }
        out.push_str("</tbody></table></div>");
    }
    out.push_str("</section><section><h2>Totals by model (exact)</h2>");
    totals_table(&mut out, report, GroupBy::Model, "model");
    out.push_str("</section><section><h2>Totals by pipeline (exact)</h2>");
    totals_table(&mut out, report, GroupBy::Pipeline, "pipeline");
    out.push_str("</section></body></html>\n");
    out
}
