//! How the domain's typed values are stored: by their stable names, read back strictly (a name the
//! code does not know is a conversion error, never a silent default).

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::domain::{ApprovalState, Direction, Priority, TicketStatus, TicketType};
use crate::sla::clock::Target;

impl ToSql for TicketStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for TicketStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value.as_str()?.parse().map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

impl ToSql for Priority {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Priority {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value.as_str()?.parse().map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

impl ToSql for TicketType {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for TicketType {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value.as_str()?.parse().map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

impl ToSql for Target {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Target {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let name = value.as_str()?;
        Target::from_name(name).ok_or_else(|| FromSqlError::Other(format!("unknown SLA target {name:?}").into()))
    }
}

impl ToSql for Direction {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Direction {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_str()? {
            "in" => Ok(Direction::In),
            "out" => Ok(Direction::Out),
            other => Err(FromSqlError::Other(format!("unknown direction {other:?}").into())),
        }
    }
}

impl ToSql for ApprovalState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for ApprovalState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value.as_str()?.parse().map_err(|e: String| FromSqlError::Other(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_unknown_names_are_errors() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for s in TicketStatus::ALL {
            let back: TicketStatus = conn.query_row("SELECT ?1", [s], |r| r.get(0)).unwrap();
            assert_eq!(back, s);
        }
        let bad: rusqlite::Result<TicketStatus> = conn.query_row("SELECT 'archived'", [], |r| r.get(0));
        assert!(bad.is_err());
        for p in Priority::ALL {
            let back: Priority = conn.query_row("SELECT ?1", [p], |r| r.get(0)).unwrap();
            assert_eq!(back, p);
        }
        let bad: rusqlite::Result<Priority> = conn.query_row("SELECT 'P9'", [], |r| r.get(0));
        assert!(bad.is_err());
        for t in TicketType::ALL {
            let back: TicketType = conn.query_row("SELECT ?1", [t], |r| r.get(0)).unwrap();
            assert_eq!(back, t);
        }
        let bad: rusqlite::Result<TicketType> = conn.query_row("SELECT 'chore'", [], |r| r.get(0));
        assert!(bad.is_err());
        let d: Direction = conn.query_row("SELECT ?1", [Direction::Out], |r| r.get(0)).unwrap();
        assert_eq!(d, Direction::Out);
    }
}
