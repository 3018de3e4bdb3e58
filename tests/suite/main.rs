//! The integration suite, one test binary (it compiles and links once). The modules that talk to
//! the mail lab (`scripts/mail-lab start`: Dovecot, Postfix and Cyrus on loopback) skip themselves
//! with a message saying how to start it when it is down, and fail instead under
//! `MAILDESK_REQUIRE_LAB=1`, which `scripts/test` (and so CI) sets. The others need no server.

mod common;

// Without the lab.
mod cli;
mod corpus_pipeline;
mod reply_fixtures;

// Against the lab.
mod backup;
mod cyrus;
mod database_faults;
mod faults;
mod imap_restart;
mod itsm;
mod loops;
mod metrics;
mod oauth;
mod queues;
mod real_mail;
mod retention;
mod security;
mod sla;
mod smtp_faults;
mod spine;
mod storage;
mod systemd;
mod technicians;
mod work_by_mail;
