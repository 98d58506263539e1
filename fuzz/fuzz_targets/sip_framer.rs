//! Feed the input to a `StreamFramer` in chunks whose sizes come from the input itself:
//! no panic, every frame within the limit, and framing must not depend on chunking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veil::sip::framing::{Frame, StreamFramer};

const MAX: usize = 4096;

fn run(data: &[u8], chunk: usize) -> (Vec<Frame>, bool) {
    let mut f = StreamFramer::new(MAX);
    let mut frames = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        f.push(piece);
        loop {
            match f.next_frame() {
                Ok(Some(fr)) => {
                    if let Frame::Message(m) = &fr {
                        assert!(m.len() <= MAX);
                    }
                    frames.push(fr);
                }
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
    }
    (frames, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let (whole, whole_err) = run(rest, rest.len());
    let (pieces, pieces_err) = run(rest, usize::from(first % 32) + 1);
    if !whole_err && !pieces_err {
        assert_eq!(whole, pieces);
    }
});
