//! Reading a file into batches of rows: the synchronous CSV reader runs on a blocking thread over
//! the streamed body and hands [`BATCH_ROWS`] rows at a time to the async batch loop
//! (`crate::process::run_batches`), for a whole file and for a range of one (`crate::ranges`).

use tokio::sync::mpsc;
use txn_core::{CsvRows, FileError, OpenError, Row};

use crate::error::ProcessError;
use crate::process::BATCH_ROWS;

/// The read buffer of a streamed object body.
pub(crate) const READ_BUFFER_BYTES: usize = 1 << 20;

/// Rows read ahead by the parser thread: a batch of rows at or after the start line, and how
/// many rows were read for it (skipped ones included).
pub(crate) struct Chunk {
    pub(crate) rows: Vec<Row>,
    pub(crate) read: u64,
}

/// Group rows into chunks of [`BATCH_ROWS`] rows at or after `start_line`.
pub(crate) fn chunk_rows<I>(
    rows: I,
    start_line: u64,
    tx: &mpsc::Sender<Result<Chunk, ProcessError>>,
) where
    I: Iterator<Item = Result<Row, ProcessError>>,
{
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut read = 0;
    for row in rows {
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        read += 1;
        if row.line >= start_line {
            batch.push(row);
        }
        if batch.len() == BATCH_ROWS {
            let chunk = Chunk {
                rows: std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS)),
                read,
            };
            read = 0;
            if tx.blocking_send(Ok(chunk)).is_err() {
                return; // the consumer stopped (deadline or error)
            }
        }
    }
    if !batch.is_empty() || read > 0 {
        let _ = tx.blocking_send(Ok(Chunk { rows: batch, read }));
    }
}

pub(crate) fn read_failed(e: impl std::error::Error + Send + Sync + 'static) -> ProcessError {
    ProcessError::Read(Box::new(e))
}

/// A file's opening: its parser thread, or its file error (`Ok`) or transient failure (`Err`).
pub(crate) type Opening = Result<tokio::task::JoinHandle<()>, Result<FileError, ProcessError>>;

/// Start the CSV parser: `open` reads the header on a blocking thread (the parser is
/// synchronous, over streamed bodies), which then hands batches of rows at or after
/// `start_line` to `tx`; only the header is waited for here.
pub(crate) async fn start_csv<R, F>(
    open: F,
    start_line: u64,
    tx: mpsc::Sender<Result<Chunk, ProcessError>>,
) -> Opening
where
    R: std::io::BufRead,
    F: FnOnce() -> Result<CsvRows<R>, OpenError> + Send + 'static,
{
    let (header_tx, header_rx) = tokio::sync::oneshot::channel();
    let parser = tokio::task::spawn_blocking(move || match open() {
        Err(e) => {
            let _ = header_tx.send(Err(e));
        }
        Ok(mut rows) => {
            let _ = header_tx.send(Ok(()));
            let iter =
                std::iter::from_fn(|| rows.next_row().transpose()).map(|r| r.map_err(read_failed));
            chunk_rows(iter, start_line, &tx);
        }
    });
    match header_rx.await {
        Ok(Ok(())) => Ok(parser),
        Ok(Err(OpenError::File(e))) => Err(Ok(e)),
        Ok(Err(OpenError::Io(e))) => Err(Err(read_failed(e))),
        Err(_) => Err(Err(ProcessError::ReaderStopped)),
    }
}
