//! The values a hyperparameter flag takes in a sweep: one value, a list
//! `0.1,0.5,2`, or a log-spaced grid `0.05..5:8` (8 points, both ends
//! included). The flag's own checks (a momentum below 1, a positive rate)
//! run on every value later, where the configuration is validated; here
//! only the shape of the text is checked. Errors are clap's value-parser
//! messages, which clap prefixes with the flag.

use crate::init::Init;
use crate::run::LearningRate;
use crate::training::learning_rate_problem;

/// A grid flag's values, in the order given (one for a plain run).
#[derive(Clone, Debug, PartialEq)]
pub struct Grid<T>(pub Vec<T>);

/// The most points a grid may have, over all its axes: each point is a
/// configuration built and checked before any work.
pub const MAX_POINTS: usize = 100_000;

/// Log-spaced points from `from` to `to`, both positive, `count` >= 2;
/// the ends are exactly `from` and `to`.
pub fn log_grid(from: f64, to: f64, count: usize) -> Vec<f64> {
    (0..count)
        .map(|k| match k {
            0 => from,
            k if k + 1 == count => to,
            k => from * (to / from).powf(k as f64 / (count - 1) as f64),
        })
        .collect()
}

fn number(whole: &str, item: &str) -> Result<f64, String> {
    match item.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ if item.trim().is_empty() => Err(format!(
            "'{whole}' has an empty item (write a list as 0.1,0.5,2 or a grid as 0.05..5:8)"
        )),
        _ => Err(format!("'{whole}': '{}' is not a number", item.trim())),
    }
}

/// `A..B:N`, if `item` is one: N log-spaced points from A to B.
fn grid(whole: &str, item: &str) -> Result<Option<Vec<f64>>, String> {
    let Some((from, rest)) = item.split_once("..") else {
        return Ok(None);
    };
    let Some((to, count)) = rest.split_once(':') else {
        return Err(format!(
            "'{whole}': a grid needs its number of points, e.g. {}..{}:8",
            from.trim(),
            rest.trim()
        ));
    };
    let (from, to) = (number(whole, from)?, number(whole, to)?);
    let count = match count.trim().parse::<usize>() {
        Ok(n) if (2..=MAX_POINTS).contains(&n) => n,
        _ => {
            return Err(format!(
                "'{whole}': the number of grid points '{}' must be a whole number from 2 to \
                 {MAX_POINTS}",
                count.trim()
            ));
        }
    };
    if !(from > 0.0 && to > from) {
        return Err(format!(
            "'{whole}': a log-spaced grid goes from a positive value to a larger one, \
             e.g. 0.05..5:8"
        ));
    }
    Ok(Some(log_grid(from, to, count)))
}

fn no_repeats<T: PartialEq + std::fmt::Display>(whole: &str, values: &[T]) -> Result<(), String> {
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Err(format!("'{whole}' gives {v} twice"));
        }
    }
    Ok(())
}

/// A number flag's values: `x`, `a,b,c` or `a..b:n` (items of a list may
/// be grids too).
pub fn numbers(s: &str) -> Result<Vec<f64>, String> {
    let mut values = Vec::new();
    for item in s.split(',') {
        match grid(s, item)? {
            Some(points) => values.extend(points),
            None => values.push(number(s, item)?),
        }
    }
    no_repeats(s, &values)?;
    Ok(values)
}

/// `--lr`: a rate, a list or grid of rates (grid points), or `A..B`
/// without a count: rates spread log-evenly over the networks of each
/// point (the per-network sweep).
pub fn learning_rates(s: &str) -> Result<Vec<LearningRate>, String> {
    if s.contains("..") && !s.contains(':') && !s.contains(',') {
        return s
            .parse::<LearningRate>()
            .map(|lr| vec![lr])
            .map_err(|e| e.to_string());
    }
    let values = numbers(s)?;
    if let Some(bad) = values.iter().find(|v| **v <= 0.0) {
        return Err(format!("'{s}': the rate {bad} must be > 0"));
    }
    for &v in &values {
        if let Some(problem) = learning_rate_problem(v) {
            return Err(format!("'{s}': the rate {v:e}: {problem}"));
        }
    }
    Ok(values.into_iter().map(LearningRate::Fixed).collect())
}

/// `--batch-size`: whole numbers >= 1, a list, or a log grid rounded to
/// whole numbers (which must stay distinct).
pub fn batch_sizes(s: &str) -> Result<Vec<usize>, String> {
    whole_numbers(s, 1, "a batch size")
}

/// `--lr-step-size`, `--lr-t-max`: epochs >= 1, as [`batch_sizes`].
pub fn epoch_counts(s: &str) -> Result<Vec<u64>, String> {
    whole_numbers(s, 1, "a number of epochs").map(|v| v.into_iter().map(|n| n as u64).collect())
}

/// `--lr-warmup`: epochs >= 0, as [`batch_sizes`].
pub fn warmup_epochs(s: &str) -> Result<Vec<u64>, String> {
    whole_numbers(s, 0, "a number of epochs").map(|v| v.into_iter().map(|n| n as u64).collect())
}

/// Whole numbers >= `least` (`what` says what one is, for errors): a
/// number, a list, or a log grid rounded to whole numbers (which must stay
/// distinct).
fn whole_numbers(s: &str, least: usize, what: &str) -> Result<Vec<usize>, String> {
    let mut values = Vec::new();
    for item in s.split(',') {
        match grid(s, item)? {
            Some(points) => values.extend(points.iter().map(|v| v.round() as usize)),
            None => match item.trim().parse::<usize>() {
                Ok(b) => values.push(b),
                Err(_) if item.trim().is_empty() => {
                    return Err(format!("'{s}' has an empty item (e.g. 16,32,64)"));
                }
                Err(_) => {
                    return Err(format!("'{s}': '{}' is not a whole number", item.trim()));
                }
            },
        }
    }
    if values.iter().any(|&b| b < least) {
        return Err(format!("'{s}': {what} must be at least {least}"));
    }
    no_repeats(s, &values)?;
    Ok(values)
}

/// `--init`: `xavier`, `he`, `tutorial`, `uniform:A`, or a list of them;
/// after `uniform:` the bounds may be a list or grid of their own:
/// `uniform:0.5,1,2`, `uniform:0.1..10:5`.
pub fn inits(s: &str) -> Result<Vec<Init>, String> {
    let mut values = Vec::new();
    let mut uniform = false;
    for item in s.split(',') {
        let item = item.trim();
        let bounds = match item.strip_prefix("uniform:") {
            Some(rest) => {
                uniform = true;
                rest
            }
            None if uniform && !item.chars().next().is_some_and(char::is_alphabetic) => item,
            None => {
                uniform = false;
                if item.is_empty() {
                    return Err(format!("'{s}' has an empty item"));
                }
                values.push(item.parse::<Init>().map_err(|e| e.to_string())?);
                continue;
            }
        };
        let scales = match grid(s, bounds)? {
            Some(points) => points,
            None => vec![number(s, bounds)?],
        };
        for a in scales {
            values.push(
                format!("uniform:{a}")
                    .parse::<Init>()
                    .map_err(|e| e.to_string())?,
            );
        }
    }
    no_repeats(s, &values)?;
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_lists_and_spreads() {
        assert_eq!(numbers("0.1,0.5,2").unwrap(), vec![0.1, 0.5, 2.0]);
        let g = numbers("0.05..5:3").unwrap();
        assert_eq!(g[0], 0.05);
        assert_eq!(g[2], 5.0);
        assert!((g[1] - 0.5).abs() < 1e-12, "{}", g[1]);
        assert_eq!(numbers("0.9").unwrap(), vec![0.9]);
        for bad in ["0.1,,2", "a,1", "1..5", "1..5:1", "5..1:3", "0.1,0.1", ""] {
            assert!(numbers(bad).is_err(), "{bad}");
        }
        assert_eq!(
            learning_rates("0.05..5").unwrap(),
            vec![LearningRate::LogSweep {
                from: 0.05,
                to: 5.0
            }]
        );
        assert_eq!(learning_rates("0.5,2").unwrap().len(), 2);
        assert!(learning_rates("0,1").is_err());
        assert_eq!(
            batch_sizes("1..64:7").unwrap(),
            vec![1, 2, 4, 8, 16, 32, 64]
        );
        assert!(batch_sizes("0,2").is_err());
        assert!(batch_sizes("1..2:5").is_err(), "rounding repeats 1 and 2");
        assert_eq!(
            inits("uniform:0.5,1,2").unwrap(),
            vec![Init::Uniform(0.5), Init::Uniform(1.0), Init::Uniform(2.0)]
        );
        assert_eq!(
            inits("xavier,uniform:1").unwrap(),
            vec![Init::Xavier, Init::Uniform(1.0)]
        );
        assert_eq!(inits("uniform:0.1..10:3").unwrap().len(), 3);
        assert!(inits("uniform:0.5,,1").is_err());
        assert!(inits("bogus").is_err());
    }
}
