//! `maildesk report`: service levels per priority and per technician over a period.

use std::io::Write;

use super::{duration, json_out, parse_when};
use crate::config::Config;
use crate::report::{Backlog, TargetStats};
use crate::store;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// First day (YYYY-MM-DD, in the desk's time zone) or RFC 3339 instant; default: all time.
    #[arg(long)]
    pub since: Option<String>,
    /// Day after the last (exclusive), same forms.
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long)]
    pub json: bool,
}

/// "4.5 (12)": the average rating and how many; "-" for none.
fn rating(average: Option<f64>, n: u64) -> String {
    average.map(|a| format!("{a:.1} ({n})")).unwrap_or_else(|| "-".into())
}

/// Logged minutes for people: "-" for none, else "1h45m".
fn minutes(m: u64) -> String {
    if m == 0 { "-".into() } else { crate::commands::minutes_text(m.min(u32::MAX as u64) as u32) }
}

pub fn execute(args: &Args, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let Args { since, until, json } = args;
    let conn = store::open_existing(&config.helpdesk.database)?;
    let since = since.as_deref().map(|s| parse_when(config, "--since", s)).transpose()?;
    let until = until.as_deref().map(|s| parse_when(config, "--until", s)).transpose()?;
    let queues: Vec<String> = config.queues.iter().map(|q| q.name.clone()).collect();
    let services: Vec<String> = config.services.iter().map(|s| s.name.clone()).collect();
    let r = crate::report::report(&conn, since, until, (&queues, &services), store::now())?;
    if *json {
        return json_out(out, &r);
    }
    let opt = |s: Option<i64>| s.map(duration).unwrap_or_else(|| "-".into());
    // The figures a priority and a queue share, in the columns of the header below.
    let figures = |opened: u64, resolved: u64, fr: &TargetStats, res: &TargetStats, breaches: u64, b: &Backlog| {
        let pct = |p: Option<f64>| p.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "-".into());
        format!(
            "{:>7} {:>8} | {:>7} {:>8} {:>8} | {:>7} {:>8} {:>8} | {:>8} | {:>4} {:>4} {:>5} {:>4}",
            opened,
            resolved,
            pct(fr.attainment_pct),
            opt(fr.median_secs),
            opt(fr.p90_secs),
            pct(res.attainment_pct),
            opt(res.median_secs),
            opt(res.p90_secs),
            breaches,
            b.under_1d,
            b.from_1d_to_7d,
            b.from_7d_to_30d,
            b.over_30d
        )
    };
    let columns = format!(
        "{:>7} {:>8} | {:>7} {:>8} {:>8} | {:>7} {:>8} {:>8} | {:>8} | backlog <1d 1-7d 7-30d >30d",
        "OPENED", "RESOLVED", "1ST OK", "MEDIAN", "P90", "RES OK", "MEDIAN", "P90", "BREACHES"
    );
    writeln!(out, "{:<4} {columns}", "PRI")?;
    for p in &r.priorities {
        let row = figures(p.opened, p.resolved, &p.first_response, &p.resolution, p.breaches, &p.backlog);
        writeln!(out, "{:<4} {row}", p.priority)?;
    }
    if r.queues.len() > 1 {
        writeln!(out, "\n{:<12} {columns} | TIME | RATING", "QUEUE")?;
        for q in &r.queues {
            let row = figures(q.opened, q.resolved, &q.first_response, &q.resolution, q.breaches, &q.backlog);
            writeln!(
                out,
                "{:<12} {row} | {} | {}",
                q.queue,
                minutes(q.time_minutes),
                rating(q.rating_average, q.ratings)
            )?;
        }
    }
    if !r.services.is_empty() {
        writeln!(out, "\n{:<12} {columns}", "SERVICE")?;
        for s in &r.services {
            let row = figures(s.opened, s.resolved, &s.first_response, &s.resolution, s.breaches, &s.backlog);
            writeln!(out, "{:<12} {row}", s.service)?;
        }
    }
    if !r.technicians.is_empty() {
        writeln!(
            out,
            "\n{:<40} {:>8} {:>15} {:>22} {:>13} {:>8}  RATING",
            "TECHNICIAN", "HANDLED", "FIRST RESPONSES", "MEDIAN FIRST RESPONSE", "ASSIGNED OPEN", "TIME"
        )?;
        for t in &r.technicians {
            writeln!(
                out,
                "{:<40} {:>8} {:>15} {:>22} {:>13} {:>8}  {}",
                t.technician,
                t.tickets_handled,
                t.first_responses,
                opt(t.median_first_response_secs),
                t.assigned_open,
                minutes(t.time_minutes),
                rating(t.rating_average, t.ratings)
            )?;
        }
    }
    writeln!(out, "\n(times are business time in each priority's calendar; OK = within target)")?;
    Ok(())
}
