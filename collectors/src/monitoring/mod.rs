//! Collectors that evidence monitoring: that alerting rules, scrape targets and alert
//! routing are in place and working.

pub mod prometheus;
