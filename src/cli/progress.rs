//! Following a job through WatchJob: on a terminal one line redrawn in place
//! (status, elapsed time, sub-jobs), when piped one plain line per change;
//! heartbeats show only while the gateway cannot read the job from VBS.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::connect::Session;
use super::output::{Format, clean, json, status_text};
use super::{Failure, Outcome};
use crate::proto::pb::{self, JobStatus, watch_job_response};

/// Carriage return, then clear to the end of the line: the live line redraws in place.
pub(crate) const REDRAW: &str = "\r\x1b[K";

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// One line redrawn in place, with a ticking clock (a terminal).
    Live,
    /// One plain line per change (a pipe or a file).
    Lines,
    /// Nothing.
    Quiet,
}

/// Where progress goes: stdout for tables; for JSON stdout carries only
/// JSON, so progress goes to stderr, and only when that is a terminal.
fn target(format: Format) -> (Style, Box<dyn Write + Send>) {
    match format {
        Format::Table if std::io::stdout().is_terminal() => (Style::Live, Box::new(std::io::stdout())),
        Format::Table => (Style::Lines, Box::new(std::io::stdout())),
        Format::Json if std::io::stderr().is_terminal() => (Style::Live, Box::new(std::io::stderr())),
        Format::Json => (Style::Quiet, Box::new(std::io::sink())),
    }
}

/// The progress display of one job.
pub(crate) struct Progress<W: Write> {
    out: W,
    style: Style,
    started: Instant,
    latest: Option<pb::Job>,
    /// The last line printed in `Lines` style, without its elapsed time.
    last_state: String,
    /// Why polling fails, while the latest heartbeat says it does.
    trouble: Option<String>,
}

impl<W: Write> Progress<W> {
    pub(crate) fn new(out: W, style: Style) -> Progress<W> {
        Progress {
            out,
            style,
            started: Instant::now(),
            latest: None,
            last_state: String::new(),
            trouble: None,
        }
    }

    /// A new state of the job.
    pub(crate) fn job(&mut self, job: pb::Job) -> std::io::Result<()> {
        self.latest = Some(job);
        self.trouble = None;
        self.show()
    }

    /// A heartbeat: shown only when it reports failing polls.
    pub(crate) fn heartbeat(&mut self, beat: &pb::Heartbeat) -> std::io::Result<()> {
        self.trouble = (beat.consecutive_failures > 0).then(|| {
            format!(
                "gateway cannot read the job: {} failed polls, last {}",
                beat.consecutive_failures,
                clean(&beat.last_error)
            )
        });
        self.show()
    }

    /// The clock moved on: only the live line shows it.
    pub(crate) fn tick(&mut self) -> std::io::Result<()> {
        match self.style {
            Style::Live => self.show(),
            Style::Lines | Style::Quiet => Ok(()),
        }
    }

    /// Ends the live line so what follows starts on a line of its own.
    pub(crate) fn finish(&mut self) -> std::io::Result<()> {
        if self.style == Style::Live && self.latest.is_some() {
            self.out.write_all(b"\n")?;
            self.out.flush()?;
        }
        Ok(())
    }

    fn show(&mut self) -> std::io::Result<()> {
        let Some(job) = &self.latest else {
            return Ok(());
        };
        let state = state_text(job, self.trouble.as_deref());
        let elapsed = Some(self.started.elapsed());
        match self.style {
            Style::Live => {
                let line = line(job, self.trouble.as_deref(), elapsed);
                write!(self.out, "{REDRAW}{line}")?;
            }
            Style::Lines if state != self.last_state => {
                let line = line(job, self.trouble.as_deref(), elapsed);
                writeln!(self.out, "{line}")?;
                self.last_state = state;
            }
            Style::Lines | Style::Quiet => {}
        }
        self.out.flush()
    }
}

/// What the line says apart from the clock: job, status, sub-jobs, trouble.
pub(crate) fn state_text(job: &pb::Job, trouble: Option<&str>) -> String {
    line(job, trouble, None)
}

/// The whole line: job, status, elapsed time (when given), sub-jobs, trouble.
fn line(job: &pb::Job, trouble: Option<&str>, elapsed: Option<Duration>) -> String {
    let mut text = format!(
        "job {} {}",
        clean(&job.job_id),
        clean(&status_text(&job.status_raw, job.status().as_str_name(), "JOB_STATUS_"))
    );
    if let Some(elapsed) = elapsed {
        text.push_str(&format!(" {}", elapsed_text(elapsed)));
    }
    if !job.sub_jobs.is_empty() {
        let over = job.sub_jobs.iter().filter(|s| is_terminal(s)).count();
        let failed = job.sub_jobs.iter().filter(|s| s.status() == JobStatus::Fail).count();
        text.push_str(&format!(" sub-jobs {over}/{}", job.sub_jobs.len()));
        if failed > 0 {
            text.push_str(&format!(" ({failed} failed)"));
        }
    }
    if let Some(trouble) = trouble {
        text.push_str(&format!(" - {trouble}"));
    }
    text
}

/// 7s, 3m04s, 1h02m05s.
pub(crate) fn elapsed_text(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs();
    match (seconds / 3600, seconds / 60 % 60, seconds % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

pub(crate) fn is_terminal(job: &pb::Job) -> bool {
    matches!(job.status(), JobStatus::Success | JobStatus::Fail)
}

/// How a followed job ended.
pub(crate) enum Followed {
    /// Its terminal state.
    Over(Box<pb::Job>),
    /// Ctrl-C first.
    Interrupted,
}

/// Watches the job until it is terminal, showing progress the way `format`
/// and the terminal call for. With `each_state` (`job watch -o json`) every
/// state is also printed on stdout as one JSON line.
pub(crate) async fn follow(session: &Session, job_id: &str, each_state: bool) -> Result<Followed, Failure> {
    let (style, out) = target(session.format);
    let mut progress = Progress::new(out, style);
    let request = pb::WatchJobRequest {
        project_id: session.project_id.clone(),
        job_id: job_id.to_string(),
    };
    let mut stream = session.jobs.clone().watch_job(request).await?.into_inner();
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            message = stream.message() => {
                let Some(message) = message? else {
                    progress.finish()?;
                    return Err(Failure::Reply(format!("the watch of job {job_id} ended before the job did; watch it again")));
                };
                match message.event {
                    Some(watch_job_response::Event::Job(job)) => {
                        if each_state {
                            super::output::print(&format!("{}\n", json(&job, false)?))?;
                        }
                        let over = is_terminal(&job);
                        progress.job(job.clone())?;
                        if over {
                            progress.finish()?;
                            return Ok(Followed::Over(Box::new(job)));
                        }
                    }
                    Some(watch_job_response::Event::Heartbeat(beat)) => progress.heartbeat(&beat)?,
                    None => {}
                }
            }
            _ = clock.tick() => progress.tick()?,
            _ = &mut interrupted => {
                progress.finish()?;
                return Ok(Followed::Interrupted);
            }
        }
    }
}

/// The exit outcome of a followed job.
pub(crate) fn outcome(job: &pb::Job) -> Outcome {
    match job.status() {
        JobStatus::Success => Outcome::Done,
        _ => Outcome::JobFailed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(status: JobStatus, sub_jobs: Vec<pb::Job>) -> pb::Job {
        pb::Job {
            job_id: "4010b39b".into(),
            status: status as i32,
            sub_jobs,
            ..Default::default()
        }
    }

    fn three_sub_jobs() -> Vec<pb::Job> {
        vec![
            job(JobStatus::Success, vec![]),
            job(JobStatus::Fail, vec![]),
            job(JobStatus::Running, vec![]),
        ]
    }

    #[test]
    fn the_line_shows_status_elapsed_time_and_sub_jobs() {
        let state = state_text(&job(JobStatus::Running, three_sub_jobs()), None);
        assert_eq!(state, "job 4010b39b RUNNING sub-jobs 2/3 (1 failed)");
        let running = job(JobStatus::Running, three_sub_jobs());
        assert_eq!(
            line(&running, None, Some(Duration::from_secs(65))),
            "job 4010b39b RUNNING 1m05s sub-jobs 2/3 (1 failed)"
        );
        assert_eq!(state_text(&job(JobStatus::Init, vec![]), None), "job 4010b39b INIT");
    }

    #[test]
    fn elapsed_time_reads_as_people_write_it() {
        assert_eq!(elapsed_text(Duration::from_millis(7_900)), "7s");
        assert_eq!(elapsed_text(Duration::from_secs(184)), "3m04s");
        assert_eq!(elapsed_text(Duration::from_secs(3725)), "1h02m05s");
    }

    #[test]
    fn live_redraws_one_line_and_piped_prints_each_change_once() {
        let mut live = Progress::new(Vec::new(), Style::Live);
        live.job(job(JobStatus::Init, vec![])).unwrap();
        live.tick().unwrap();
        live.job(job(JobStatus::Success, vec![])).unwrap();
        live.finish().unwrap();
        let text = String::from_utf8(live.out).unwrap();
        assert_eq!(text.matches(REDRAW).count(), 3, "{text:?}");
        assert!(text.ends_with("SUCCESS 0s\n"), "{text:?}");
        assert_eq!(text.matches('\n').count(), 1, "{text:?}");

        let mut piped = Progress::new(Vec::new(), Style::Lines);
        piped.job(job(JobStatus::Init, vec![])).unwrap();
        piped.tick().unwrap();
        piped.job(job(JobStatus::Init, vec![])).unwrap();
        piped.heartbeat(&pb::Heartbeat::default()).unwrap();
        piped.job(job(JobStatus::Success, vec![])).unwrap();
        piped.finish().unwrap();
        let text = String::from_utf8(piped.out).unwrap();
        assert_eq!(text, "job 4010b39b INIT 0s\njob 4010b39b SUCCESS 0s\n");
    }

    #[test]
    fn failing_polls_show_once_when_piped() {
        let mut piped = Progress::new(Vec::new(), Style::Lines);
        piped.job(job(JobStatus::Running, vec![])).unwrap();
        let failing = pb::Heartbeat {
            consecutive_failures: 2,
            last_error: "HTTP 503 (VBS.0001)".into(),
            ..Default::default()
        };
        piped.heartbeat(&failing).unwrap();
        piped.heartbeat(&failing).unwrap();
        let text = String::from_utf8(piped.out).unwrap();
        assert_eq!(
            text,
            "job 4010b39b RUNNING 0s\njob 4010b39b RUNNING 0s - gateway cannot read the job: 2 failed polls, last HTTP 503 (VBS.0001)\n"
        );
    }
}
