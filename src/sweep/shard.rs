//! `--shard I/K|auto`: which contiguous range of network ids this process
//! trains, from the command line or from a scheduler's environment.

use std::ops::Range;
use std::str::FromStr;

use crate::error::Error;
use crate::setting::settings::{SHARD, SHARD_COUNT};

/// Shard `index` of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole run as one shard.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// The ids of this shard of `total` networks: `[total x I / K,
    /// total x (I + 1) / K)`, so sizes differ by at most one.
    pub fn range(&self, total: usize) -> Range<usize> {
        let at = |i: usize| (total as u128 * i as u128 / self.count as u128) as usize;
        at(self.index)..at(self.index + 1)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// `--shard`'s value: `I/K`, or `auto` (the scheduler's environment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardArg {
    Given(Shard),
    Auto,
}

impl FromStr for ShardArg {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        if s == "auto" {
            return Ok(ShardArg::Auto);
        }
        let bad = |why: &str| Error::Config(format!("{}: {why}", SHARD.is(format!("'{s}'"))));
        let (i, k) = s
            .split_once('/')
            .ok_or_else(|| bad("expected I/K (e.g. 0/4: the first of 4 shards) or auto"))?;
        let whole = |t: &str| t.trim().parse::<usize>().ok();
        let (Some(index), Some(count)) = (whole(i), whole(k)) else {
            return Err(bad("I and K must be whole numbers, e.g. 0/4"));
        };
        if count == 0 {
            return Err(bad("K, the number of shards, must be at least 1"));
        }
        if index >= count {
            return Err(bad(&format!(
                "I must be below K: shards are numbered 0 to {}",
                count - 1
            )));
        }
        Ok(ShardArg::Given(Shard { index, count }))
    }
}

impl ShardArg {
    /// The shard, reading `auto`'s variables through `env`:
    /// SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT (or _MIN and _MAX:
    /// `--array=0-3`), else Kubernetes' JOB_COMPLETION_INDEX with
    /// `shard_count` (`--shard-count`, which also overrides Slurm's count).
    pub fn resolve(
        &self,
        shard_count: Option<usize>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Shard, Error> {
        let given = match self {
            ShardArg::Given(shard) => {
                if let Some(k) = shard_count.filter(|&k| k != shard.count) {
                    return Err(Error::Config(format!(
                        "{} and {} disagree ({SHARD_COUNT} is for {})",
                        SHARD.is(shard),
                        SHARD_COUNT.is(k),
                        SHARD.is("auto")
                    )));
                }
                return Ok(*shard);
            }
            ShardArg::Auto => shard_count,
        };
        let number = |name: &str| -> Result<Option<usize>, Error> {
            match env(name) {
                None => Ok(None),
                Some(v) => v.trim().parse::<usize>().map(Some).map_err(|_| {
                    Error::Config(format!(
                        "{}: {name}={v} is not a whole number",
                        SHARD.is("auto")
                    ))
                }),
            }
        };
        let (index, count, source) = if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let count = match (given, number("SLURM_ARRAY_TASK_COUNT")?) {
                (Some(k), _) => k,
                (None, Some(k)) => k,
                (None, None) => match number("SLURM_ARRAY_TASK_MAX")? {
                    Some(max) if max >= min => max - min + 1,
                    _ => {
                        return Err(Error::Config(format!(
                            "{}: SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT \
                             nor SLURM_ARRAY_TASK_MAX is; give {SHARD_COUNT} K",
                            SHARD.is("auto")
                        )));
                    }
                },
            };
            let index = id.checked_sub(min).ok_or_else(|| {
                Error::Config(format!(
                    "{}: SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}",
                    SHARD.is("auto")
                ))
            })?;
            (index, count, "SLURM_ARRAY_TASK_ID")
        } else if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let count = given.ok_or_else(|| {
                Error::Config(format!(
                    "{}: JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) is set; give the job's \
                     completions as {SHARD_COUNT} K",
                    SHARD.is("auto")
                ))
            })?;
            (index, count, "JOB_COMPLETION_INDEX")
        } else {
            return Err(Error::Config(format!(
                "{}: neither SLURM_ARRAY_TASK_ID (a Slurm job array, sbatch --array=0-3) nor \
                 JOB_COMPLETION_INDEX (a Kubernetes Indexed Job, with {SHARD_COUNT} K) is set; \
                 give {} instead",
                SHARD.is("auto"),
                SHARD.is("I/K")
            )));
        };
        if count == 0 || index >= count {
            return Err(Error::Config(format!(
                "{}: {source} gives shard {index} of {count}: shards are numbered 0 to K-1",
                SHARD.is("auto")
            )));
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_id_once() {
        for total in [0, 1, 7, 10, 1000] {
            for count in [1, 3, 4, 7, 11] {
                let mut next = 0;
                for index in 0..count {
                    let r = Shard { index, count }.range(total);
                    assert_eq!(r.start, next, "shard {index}/{count} of {total}");
                    assert!(r.len() <= total / count + 1);
                    next = r.end;
                }
                assert_eq!(next, total);
            }
        }
    }

    #[test]
    fn parsing_and_environments() {
        assert_eq!(
            "2/4".parse::<ShardArg>().unwrap(),
            ShardArg::Given(Shard { index: 2, count: 4 })
        );
        for bad in ["4/4", "1/0", "a/2", "3", "-1/2", ""] {
            assert!(bad.parse::<ShardArg>().is_err(), "{bad}");
        }
        let slurm = |name: &str| match name {
            "SLURM_ARRAY_TASK_ID" => Some("5".to_string()),
            "SLURM_ARRAY_TASK_MIN" => Some("4".to_string()),
            "SLURM_ARRAY_TASK_MAX" => Some("7".to_string()),
            _ => None,
        };
        assert_eq!(
            ShardArg::Auto.resolve(None, &slurm).unwrap(),
            Shard { index: 1, count: 4 }
        );
        let k8s = |name: &str| (name == "JOB_COMPLETION_INDEX").then(|| "2".to_string());
        assert!(ShardArg::Auto.resolve(None, &k8s).is_err());
        assert_eq!(
            ShardArg::Auto.resolve(Some(3), &k8s).unwrap(),
            Shard { index: 2, count: 3 }
        );
        assert!(ShardArg::Auto.resolve(Some(2), &k8s).is_err());
        let none = |_: &str| None;
        let message = ShardArg::Auto.resolve(None, &none).unwrap_err().to_string();
        assert!(message.contains("SLURM_ARRAY_TASK_ID"), "{message}");
    }
}
