//! `maildesk sla N`: a ticket's SLA: policy, targets, elapsed business time, pauses, escalations.

use std::io::Write;

use anyhow::bail;

use super::{duration, json_out};
use crate::config::Config;
use crate::store;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: i64,
    #[arg(long)]
    pub json: bool,
}

pub fn execute(args: &Args, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let Args { id, json } = args;
    let conn = store::open_existing(&config.helpdesk.database)?;
    let Some(v) = crate::report::sla_view(&conn, config, *id, store::now())? else {
        bail!("ticket {id} does not exist")
    };
    if *json {
        return json_out(out, &v);
    }
    let when = |t: Option<i64>| crate::templates::local_time(&config.helpdesk.timezone, t);
    let p = &v.policy;
    writeln!(
        out,
        "{} priority {}, calendar {}",
        crate::threading::format_tag(&config.helpdesk.tag, *id),
        p.priority,
        p.calendar
    )?;
    if v.automatic {
        writeln!(out, "automatic ticket (machine mail): no SLA clock runs until `maildesk promote {id}`")?;
    }
    let ladder: Vec<String> = p.escalate.iter().map(|l| format!("{} -> {}", l.at, l.notify.join(", "))).collect();
    writeln!(out, "escalation ladder: {}", ladder.join("; "))?;
    for t in [&v.clock.first_response, &v.clock.resolution] {
        writeln!(
            out,
            "{:<15} {:<8} elapsed {} of {}{}  due {}",
            t.target.label(),
            t.state,
            duration(t.elapsed_secs),
            duration(t.target_secs),
            if t.breached { " BREACHED" } else { "" },
            when(t.due_at)
        )?;
        for l in &t.levels {
            let fired = l.fired_at.map(|f| format!("fired {}", when(Some(f)))).unwrap_or_else(|| "not fired".into());
            writeln!(out, "    {:>4}%  reached {}  {fired}", l.percent, when(l.reached_at))?;
        }
    }
    for (from, until) in &v.clock.pauses {
        writeln!(
            out,
            "paused {} - {}",
            when(Some(*from)),
            until.map(|u| when(Some(u))).unwrap_or_else(|| "now".into())
        )?;
    }
    Ok(())
}
