//! Which of Redis Cluster's 16384 hash slots a key or command belongs to,
//! and which node serves each slot (`CLUSTER SLOTS`).

use redis::{Arg, Cmd, Pipeline, Value};

use crate::config::Address;

/// The hash slots of a Redis Cluster.
pub(crate) const SLOTS: usize = 16384;

/// The slot of `key`: CRC16 (XMODEM) of its hash tag (what is between the
/// first `{` and the next `}`, if that is not empty) or of the whole key.
pub(crate) fn slot_of(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) % SLOTS as u16
}

fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &byte| {
        (0..8).fold(crc ^ (u16::from(byte) << 8), |crc, _| {
            if crc & 0x8000 != 0 {
                crc << 1 ^ 0x1021
            } else {
                crc << 1
            }
        })
    })
}

/// The slot of the first key `cmd` names, if it names one: the store only
/// sends commands whose keys share a slot (see `keys`).
pub(crate) fn slot_of_command(cmd: &Cmd) -> Option<u16> {
    let mut args = cmd.args_iter().filter_map(|arg| match arg {
        Arg::Simple(bytes) => Some(bytes),
        _ => None,
    });
    let name = args.next()?.to_ascii_uppercase();
    let key = match name.as_slice() {
        b"EVALSHA" | b"EVAL" | b"EVALSHA_RO" | b"EVAL_RO" => {
            let _script = args.next()?;
            let keys: usize = std::str::from_utf8(args.next()?).ok()?.parse().ok()?;
            if keys == 0 {
                return None;
            }
            args.next()?
        }
        b"SCRIPT" | b"TIME" | b"PING" | b"INFO" | b"CLUSTER" | b"ASKING" | b"WAIT" | b"ROLE"
        | b"READONLY" => return None,
        _ => args.next()?,
    };
    Some(slot_of(key))
}

/// The slot of the first command of `pipeline` that names a key.
pub(crate) fn slot_of_pipeline(pipeline: &Pipeline) -> Option<u16> {
    pipeline.cmd_iter().find_map(slot_of_command)
}

/// Which node is the master of each slot, as `CLUSTER SLOTS` answered.
#[derive(Clone)]
pub(crate) struct SlotMap {
    /// Per slot, an index into `masters`.
    owners: Vec<Option<u16>>,
    masters: Vec<Address>,
}

impl SlotMap {
    /// A map of no slot.
    pub(crate) fn empty() -> Self {
        Self {
            owners: vec![None; SLOTS],
            masters: Vec::new(),
        }
    }

    /// Reads an answer to `CLUSTER SLOTS` from the node at `asked` (whose
    /// own address an empty host stands for).
    pub(crate) fn parse(answer: Value, asked: &Address) -> Result<Self, String> {
        let Value::Array(ranges) = answer else {
            return Err(format!(
                "an answer to CLUSTER SLOTS that is not a list: {answer:?}"
            ));
        };
        let mut map = Self::empty();
        for range in ranges {
            let Value::Array(fields) = range else {
                return Err("a CLUSTER SLOTS range that is not a list".into());
            };
            let (start, end, master) = match fields.as_slice() {
                [Value::Int(start), Value::Int(end), master, ..] => (*start, *end, master),
                _ => return Err("a CLUSTER SLOTS range without its slots and master".into()),
            };
            let address = node_address(master, asked)?;
            let index = match map.masters.iter().position(|a| *a == address) {
                Some(index) => index,
                None => {
                    map.masters.push(address);
                    map.masters.len() - 1
                }
            };
            let slots = usize::try_from(start).ok().zip(usize::try_from(end).ok());
            match slots {
                Some((start, end)) if start <= end && end < SLOTS => {
                    for owner in &mut map.owners[start..=end] {
                        *owner = Some(index as u16);
                    }
                }
                _ => return Err(format!("a CLUSTER SLOTS range of slots {start} to {end}")),
            }
        }
        Ok(map)
    }

    /// The master of `slot`, if some node serves it.
    pub(crate) fn master(&self, slot: u16) -> Option<&Address> {
        let index = self.owners[usize::from(slot)]?;
        self.masters.get(usize::from(index))
    }

    /// Every master that serves a slot.
    pub(crate) fn masters(&self) -> &[Address] {
        &self.masters
    }

    /// Records that `address` serves `slot` now (a `MOVED` answer said so).
    pub(crate) fn learn(&mut self, slot: u16, address: Address) {
        let index = match self.masters.iter().position(|a| *a == address) {
            Some(index) => index,
            None => {
                self.masters.push(address);
                self.masters.len() - 1
            }
        };
        self.owners[usize::from(slot)] = Some(index as u16);
    }

    /// The slots no node serves, as ranges, for messages.
    pub(crate) fn uncovered(&self) -> Vec<(usize, usize)> {
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for (slot, owner) in self.owners.iter().enumerate() {
            if owner.is_some() {
                continue;
            }
            match ranges.last_mut() {
                Some((_, end)) if *end + 1 == slot => *end = slot,
                _ => ranges.push((slot, slot)),
            }
        }
        ranges
    }
}

/// A node of a `CLUSTER SLOTS` range: `[host, port, id, …]`.
fn node_address(node: &Value, asked: &Address) -> Result<Address, String> {
    let Value::Array(fields) = node else {
        return Err("a CLUSTER SLOTS node that is not a list".into());
    };
    match fields.as_slice() {
        [Value::BulkString(host), Value::Int(port), ..] => {
            let host = String::from_utf8(host.clone())
                .map_err(|_| "a CLUSTER SLOTS host that is not text".to_owned())?;
            let port = u16::try_from(*port).map_err(|_| format!("a node on port {port}"))?;
            // An empty host (or "?") is the node that answered, which does not know its own.
            let host = match host.as_str() {
                "" | "?" => asked.host.clone(),
                _ => host,
            };
            Ok(Address::new(host, port))
        }
        _ => Err("a CLUSTER SLOTS node without a host and port".into()),
    }
}

/// Parses `"host:port"` as a `MOVED` or `ASK` answer names a node.
pub(crate) fn parse_node(text: &str) -> Option<Address> {
    let (host, port) = text.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some(Address::new(host, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_cluster_specification() {
        // The examples of the Redis Cluster specification.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(
            slot_of(b"{user1000}.following"),
            slot_of(b"{user1000}.followers")
        );
        assert_eq!(slot_of(b"foo{}{bar}"), slot_of(b"foo{}{bar}"));
        assert_eq!(slot_of(b"foo{{bar}}zap"), slot_of(b"{bar"));
        assert_eq!(slot_of(b"foo{bar}{zap}"), slot_of(b"bar"));
        assert_eq!(slot_of(b"foo"), 12182);
    }

    #[test]
    fn commands_route_by_their_first_key() {
        let mut eval = redis::cmd("EVALSHA");
        eval.arg("abc")
            .arg(2)
            .arg("app:x:{7}")
            .arg("app:s:{7}ff")
            .arg("argv");
        assert_eq!(slot_of_command(&eval), Some(slot_of(b"7")));
        let mut keyless = redis::cmd("EVALSHA");
        keyless.arg("abc").arg(0);
        assert_eq!(slot_of_command(&keyless), None);
        assert_eq!(slot_of_command(redis::cmd("TIME").arg(1)), None);
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET").arg("a:s:{9}00").arg("u").cmd("TIME");
        assert_eq!(slot_of_pipeline(&pipe), Some(slot_of(b"9")));
    }

    #[test]
    fn a_slot_map_reads_cluster_slots() {
        let node = |host: &str, port| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let answer = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(99),
                node("10.0.0.1", 7000),
                node("r", 1),
            ]),
            Value::Array(vec![Value::Int(200), Value::Int(16383), node("", 7001)]),
        ]);
        let asked = Address::new("seed", 7001);
        let mut map = SlotMap::parse(answer, &asked).unwrap();
        assert_eq!(map.master(5), Some(&Address::new("10.0.0.1", 7000)));
        assert_eq!(map.master(300), Some(&asked));
        assert_eq!(map.master(150), None);
        assert_eq!(map.uncovered(), vec![(100, 199)]);
        map.learn(150, Address::new("10.0.0.2", 7002));
        assert_eq!(map.master(150), Some(&Address::new("10.0.0.2", 7002)));
        assert_eq!(map.masters().len(), 3);
        assert!(SlotMap::parse(Value::Int(1), &asked).is_err());
        assert_eq!(parse_node("[::1]:7000"), Some(Address::new("::1", 7000)));
    }
}
