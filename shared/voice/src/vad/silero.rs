//! Silero VAD (v6, `silero_vad_op18_ifless.onnx` from the `silero-vad` 6.2.3 wheel) run by tract, a pure-Rust
//! ONNX runtime. The model is loaded and optimised once per [`Session`](crate::Session)
//! ([`SileroModel::load`], shared behind an `Arc`); each run gets its own state
//! ([`Silero`]): the LSTM's state tensor and the 64 samples of context the model expects before
//! each 512-sample (32 ms) window at 16 kHz, as the package's own ONNX wrapper feeds it.
//!
//! The model file is fetched by `make setup` (never at run time); a missing or unreadable file
//! fails the session's construction naming `make setup`.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::anyhow;

use super::{options::VadError, window::Windows};

/// Samples per window at 16 kHz (the model's only 16 kHz window besides its multiples).
const WINDOW: usize = 512;
/// Samples of the previous window prepended to each one.
const CONTEXT: usize = 64;

type Plan = Arc<TypedRunnableModel>;

/// The model's inputs, in the order its graph declares them (v6 and its op18 variant differ).
#[derive(Debug, Clone, Copy)]
enum Input {
    Audio,
    State,
    Rate,
}

/// The optimised model, shared by every run of a session.
#[derive(Clone)]
pub struct SileroModel {
    plan: Plan,
    inputs: Arc<[Input]>,
    path: PathBuf,
}

impl std::fmt::Debug for SileroModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SileroModel")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SileroModel {
    pub fn load(path: &Path) -> Result<Self, VadError> {
        let bytes = std::fs::read(path).map_err(|source| VadError::ModelMissing {
            path: path.to_owned(),
            source,
        })?;
        let (plan, inputs) = build(&bytes).map_err(|e| VadError::Model {
            path: path.to_owned(),
            source: e.into(),
        })?;
        Ok(Self {
            plan,
            inputs: inputs.into(),
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Fix the input shapes (one 576-sample window, state 2x1x128) and the sample rate (16 kHz, a
/// constant, so the model's `If` on it folds away at optimisation), then optimise.
fn build(bytes: &[u8]) -> TractResult<(Plan, Vec<Input>)> {
    let mut model = tract_onnx::onnx().model_for_read(&mut &bytes[..])?;
    let mut inputs = Vec::new();
    let batch = model.symbols.sym("batch");
    for (ix, outlet) in model.input_outlets()?.to_vec().into_iter().enumerate() {
        let name = model.node(outlet.node).name.clone();
        let (input, fact): (Input, InferenceFact) = match name.as_str() {
            "input" => (
                Input::Audio,
                InferenceFact::dt_shape(
                    f32::datum_type(),
                    tvec![batch.to_dim(), (CONTEXT + WINDOW).to_dim()],
                ),
            ),
            "state" => (
                Input::State,
                InferenceFact::dt_shape(
                    f32::datum_type(),
                    tvec![2.to_dim(), batch.to_dim(), 128.to_dim()],
                ),
            ),
            "sr" => (Input::Rate, tensor0(16_000i64).into()),
            other => return Err(anyhow!("unexpected model input {other:?}")),
        };
        model.set_input_fact(ix, fact)?;
        inputs.push(input);
    }
    Ok((model.into_optimized()?.into_runnable()?, inputs))
}

/// One run's detector state.
pub(crate) struct Silero {
    model: SileroModel,
    windows: Windows,
    state: Tensor,
    /// The last `CONTEXT` samples, then the current window, as f32 in [-1, 1].
    input: Vec<f32>,
    failed: bool,
}

impl std::fmt::Debug for Silero {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Silero")
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl Silero {
    pub fn new(model: SileroModel) -> Self {
        Self {
            model,
            windows: Windows::new(WINDOW),
            state: Tensor::zero::<f32>(&[2, 1, 128]).unwrap_or_else(|_| Tensor::default()),
            input: vec![0.0; CONTEXT + WINDOW],
            failed: false,
        }
    }

    pub fn window(&self) -> std::time::Duration {
        self.windows.duration()
    }

    /// Each whole window's speech probability, in order. An inference error (none is expected
    /// once the model loaded) is logged once and scores the window 0.
    pub fn push(&mut self, samples: &[i16], rate: u32, mut each: impl FnMut(f32)) {
        let Self {
            model,
            windows,
            state,
            input,
            failed,
            ..
        } = self;
        windows.push(samples, rate, |w| {
            input.copy_within(WINDOW.., 0);
            for (x, &s) in input[CONTEXT..].iter_mut().zip(w) {
                *x = f32::from(s) / 32768.0;
            }
            match infer(model, input, state) {
                Ok(p) => each(p),
                Err(e) => {
                    if !*failed {
                        tracing::warn!(error = %e, "vad.silero_failed");
                        *failed = true;
                    }
                    each(0.0);
                }
            }
        });
    }
}

fn infer(model: &SileroModel, input: &[f32], state: &mut Tensor) -> TractResult<f32> {
    let mut args = TVec::new();
    for i in model.inputs.iter() {
        args.push(match i {
            Input::Audio => {
                tract_ndarray::Array2::from_shape_vec((1, CONTEXT + WINDOW), input.to_vec())?
                    .into_tvalue()
            }
            Input::State => state.clone().into_tvalue(),
            Input::Rate => tensor0(16_000i64).into_tvalue(),
        });
    }
    let out = model.plan.run(args)?;
    let p = match out.first() {
        Some(t) => t.cast_to_scalar::<f32>()?,
        None => 0.0,
    };
    if let Some(next) = out.get(1) {
        *state = next.clone().into_tensor();
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vad::options::dev_model_path;

    #[test]
    fn a_missing_model_names_make_setup() {
        let err = SileroModel::load(Path::new("/nonexistent/silero_vad.onnx"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("make setup"), "{err}");
        assert!(err.contains("/nonexistent/silero_vad.onnx"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_model_fails_to_load() {
        let path = std::env::temp_dir().join(format!("not-a-model-{}.onnx", std::process::id()));
        std::fs::write(&path, b"not onnx").ok();
        let err = SileroModel::load(&path).err();
        std::fs::remove_file(&path).ok();
        assert!(matches!(err, Some(VadError::Model { .. })), "{err:?}");
    }

    /// The dev model scores the callee's words (`make setup`'s hello-8k.ulaw) high and silence
    /// low.
    #[test]
    fn scores_speech_above_silence() {
        let model = match SileroModel::load(&dev_model_path()) {
            Ok(m) => m,
            Err(e) => panic!("{e}: {}", crate::error_chain(&e)),
        };
        let words = crate::vad::test_audio::hello_16k();
        let mut silero = Silero::new(model);
        let mut quiet = Vec::new();
        silero.push(&vec![0; 16_000], 16_000, |p| quiet.push(p));
        let mut speech = Vec::new();
        silero.push(&words, 16_000, |p| speech.push(p));
        let max_quiet = quiet.iter().copied().fold(0.0, f32::max);
        let max_speech = speech.iter().copied().fold(0.0, f32::max);
        assert!(max_quiet < 0.1, "silence scored {max_quiet}");
        assert!(max_speech > 0.8, "speech scored at most {max_speech}");
    }
}

#[cfg(test)]
mod phone_rate_tests {
    use super::*;
    use crate::vad::options::dev_model_path;

    /// What the engine feeds it on a call: 48 kHz frames of 20 ms (the transport's rate), and
    /// the flite "Hello?" of the answering callee, read from `.tools/audio/person-8k.ulaw`.
    #[test]
    fn scores_a_phone_hello_at_48k_in_20ms_frames() {
        let model = SileroModel::load(&dev_model_path()).expect("the model (make setup)");
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../.tools/audio/person-8k.ulaw");
        let ulaw = std::fs::read(&path).expect("person-8k.ulaw (make setup)");
        let pcm8: Vec<i16> = ulaw.iter().map(|&b| decode(b)).collect();
        let pcm48: Vec<i16> = pcm8.iter().flat_map(|&s| [s; 6]).collect();
        let mut silero = Silero::new(model);
        let mut scores = Vec::new();
        for frame in pcm48.chunks(960) {
            silero.push(frame, 48_000, |p| scores.push(p));
        }
        let max = scores.iter().copied().fold(0.0, f32::max);
        let mut s8 = Silero::new(SileroModel::load(&dev_model_path()).expect("model"));
        let mut scores8 = Vec::new();
        for frame in pcm8.chunks(160) {
            s8.push(frame, 8_000, |p| scores8.push(p));
        }
        let max8 = scores8.iter().copied().fold(0.0, f32::max);
        assert!(max > 0.5, "48 kHz: at most {max}; 8 kHz: at most {max8}");
    }

    fn decode(b: u8) -> i16 {
        let b = !b;
        let sign = b & 0x80;
        let exp = (b >> 4) & 0x07;
        let mant = b & 0x0f;
        let mut v = ((i32::from(mant) << 3) + 0x84) << exp;
        v -= 0x84;
        (if sign != 0 { -v } else { v }) as i16
    }
}
