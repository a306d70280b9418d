//! BERT encoder: weights loaded from a memory-mapped `model.safetensors` plus `config.json`, and a
//! lean f32 forward pass over *packed* sequences (no padding: every token row belongs to a real
//! token, attention runs per sequence and head). Q/K/V are one fused projection; bias, GELU,
//! residual and layer norm are applied in place on the GEMM outputs.

use std::ops::Range;
use std::path::Path;

use memmap2::Mmap;
use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use crate::EmbedError;
use crate::ops::{Mat, Rhs, bias_gelu, bias_layernorm, fill_rows, sgemm, softmax_rows};

/// The subset of Hugging Face's `config.json` a BERT encoder needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_pos")]
    pub position_embedding_type: String,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}
fn default_pos() -> String {
    "absolute".into()
}

struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

struct Layer {
    /// `[hidden, 3·hidden]`: query | key | value weights, transposed to input-major.
    w_qkv: Vec<f32>,
    b_qkv: Vec<f32>,
    /// `[hidden, hidden]`, input-major.
    w_attn_out: Vec<f32>,
    b_attn_out: Vec<f32>,
    ln_attn: LayerNorm,
    /// `[hidden, intermediate]`, input-major.
    w_inter: Vec<f32>,
    b_inter: Vec<f32>,
    /// `[intermediate, hidden]`, input-major.
    w_out: Vec<f32>,
    b_out: Vec<f32>,
    ln_out: LayerNorm,
}

/// A loaded BERT encoder.
pub(crate) struct BertModel {
    cfg: BertConfig,
    eps: f32,
    /// The mapped file; word embeddings are read from it row by row (never copied whole).
    mmap: Mmap,
    word_emb: Range<usize>,
    pos_emb: Vec<f32>,
    type_emb0: Vec<f32>,
    ln_emb: LayerNorm,
    layers: Vec<Layer>,
}

impl std::fmt::Debug for BertModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertModel")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn model_err(msg: impl Into<String>) -> EmbedError {
    EmbedError::Model(msg.into())
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> EmbedError + '_ {
    move |source| EmbedError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Resolves tensor names with or without the `bert.` prefix.
struct Tensors<'a> {
    st: SafeTensors<'a>,
    prefix: &'static str,
}

impl<'a> Tensors<'a> {
    fn raw(
        &self,
        name: &str,
        shape: &[usize],
    ) -> Result<safetensors::tensor::TensorView<'a>, EmbedError> {
        let full = format!("{}{name}", self.prefix);
        let t = self
            .st
            .tensor(&full)
            .map_err(|e| model_err(format!("tensor {full}: {e}")))?;
        if t.dtype() != Dtype::F32 {
            return Err(model_err(format!(
                "tensor {full} is {:?}, expected F32",
                t.dtype()
            )));
        }
        if t.shape() != shape {
            return Err(model_err(format!(
                "tensor {full} has shape {:?}, expected {shape:?}",
                t.shape()
            )));
        }
        Ok(t)
    }

    fn vec(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, EmbedError> {
        Ok(f32s(self.raw(name, shape)?.data()))
    }

    /// A PyTorch `Linear` weight (`[out, in]`) transposed to `[in, out]`.
    fn linear_t(&self, name: &str, out: usize, inp: usize) -> Result<Vec<f32>, EmbedError> {
        let w = self.vec(name, &[out, inp])?;
        let mut t = vec![0.0f32; w.len()];
        for o in 0..out {
            for i in 0..inp {
                t[i * out + o] = w[o * inp + i];
            }
        }
        Ok(t)
    }

    fn layer_norm(&self, name: &str, n: usize) -> Result<LayerNorm, EmbedError> {
        let get = |a: &str, b: &str| {
            self.vec(&format!("{name}.{a}"), &[n])
                .or_else(|_| self.vec(&format!("{name}.{b}"), &[n]))
        };
        Ok(LayerNorm {
            gamma: get("weight", "gamma")?,
            beta: get("bias", "beta")?,
        })
    }
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

impl BertModel {
    /// Loads `config.json` and `model.safetensors` from `dir`.
    pub(crate) fn load(dir: &Path) -> Result<Self, EmbedError> {
        let cfg_path = dir.join("config.json");
        let cfg_bytes = std::fs::read(&cfg_path).map_err(io_err(&cfg_path))?;
        let cfg: BertConfig = serde_json::from_slice(&cfg_bytes)
            .map_err(|e| model_err(format!("{}: {e}", cfg_path.display())))?;
        if cfg.hidden_act != "gelu" {
            return Err(model_err(format!(
                "unsupported hidden_act {:?}",
                cfg.hidden_act
            )));
        }
        if cfg.position_embedding_type != "absolute" {
            return Err(model_err(format!(
                "unsupported position_embedding_type {:?}",
                cfg.position_embedding_type
            )));
        }
        if cfg.num_attention_heads == 0 || cfg.hidden_size % cfg.num_attention_heads != 0 {
            return Err(model_err(
                "hidden_size is not a multiple of num_attention_heads",
            ));
        }
        let path = dir.join("model.safetensors");
        let file = std::fs::File::open(&path).map_err(io_err(&path))?;
        // SAFETY: the file is only read; carbide never writes model files while they are mapped.
        let mmap = unsafe { Mmap::map(&file) }.map_err(io_err(&path))?;
        let st = SafeTensors::deserialize(&mmap)
            .map_err(|e| model_err(format!("{}: {e}", path.display())))?;
        let prefix = if st.tensor("bert.embeddings.word_embeddings.weight").is_ok() {
            "bert."
        } else {
            ""
        };
        let t = Tensors { st, prefix };
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);

        let word = t.raw("embeddings.word_embeddings.weight", &[cfg.vocab_size, h])?;
        let start = word.data().as_ptr() as usize - mmap.as_ptr() as usize;
        let word_emb = start..start + word.data().len();
        let pos_emb = t.vec(
            "embeddings.position_embeddings.weight",
            &[cfg.max_position_embeddings, h],
        )?;
        let types = t.vec(
            "embeddings.token_type_embeddings.weight",
            &[cfg.type_vocab_size, h],
        )?;
        let type_emb0 = types[..h].to_vec();
        let ln_emb = t.layer_norm("embeddings.LayerNorm", h)?;

        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for l in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let q = t.linear_t(&format!("{p}.attention.self.query.weight"), h, h)?;
            let k = t.linear_t(&format!("{p}.attention.self.key.weight"), h, h)?;
            let v = t.linear_t(&format!("{p}.attention.self.value.weight"), h, h)?;
            let mut w_qkv = Vec::with_capacity(3 * h * h);
            for row in 0..h {
                for m in [&q, &k, &v] {
                    w_qkv.extend_from_slice(&m[row * h..(row + 1) * h]);
                }
            }
            let mut b_qkv = Vec::with_capacity(3 * h);
            for n in ["query", "key", "value"] {
                b_qkv.extend(t.vec(&format!("{p}.attention.self.{n}.bias"), &[h])?);
            }
            layers.push(Layer {
                w_qkv,
                b_qkv,
                w_attn_out: t.linear_t(&format!("{p}.attention.output.dense.weight"), h, h)?,
                b_attn_out: t.vec(&format!("{p}.attention.output.dense.bias"), &[h])?,
                ln_attn: t.layer_norm(&format!("{p}.attention.output.LayerNorm"), h)?,
                w_inter: t.linear_t(&format!("{p}.intermediate.dense.weight"), i, h)?,
                b_inter: t.vec(&format!("{p}.intermediate.dense.bias"), &[i])?,
                w_out: t.linear_t(&format!("{p}.output.dense.weight"), h, i)?,
                b_out: t.vec(&format!("{p}.output.dense.bias"), &[h])?,
                ln_out: t.layer_norm(&format!("{p}.output.LayerNorm"), h)?,
            });
        }
        drop(t);
        Ok(Self {
            eps: cfg.layer_norm_eps as f32,
            cfg,
            mmap,
            word_emb,
            pos_emb,
            type_emb0,
            ln_emb,
            layers,
        })
    }

    pub(crate) fn hidden_size(&self) -> usize {
        self.cfg.hidden_size
    }

    pub(crate) fn max_positions(&self) -> usize {
        self.cfg.max_position_embeddings
    }

    /// Runs the encoder over `seqs` packed back to back and returns the last hidden states,
    /// `[total tokens, hidden]` row-major, rows in the order of `seqs`. Must run inside the rayon
    /// pool that should do the work; `threads` is that pool's size.
    pub(crate) fn forward(
        &self,
        seqs: &[Vec<u32>],
        threads: usize,
    ) -> Result<Vec<f32>, EmbedError> {
        let h = self.cfg.hidden_size;
        let inter = self.cfg.intermediate_size;
        let heads = self.cfg.num_attention_heads;
        let dh = h / heads;
        let mut spans = Vec::with_capacity(seqs.len());
        let mut total = 0usize;
        for s in seqs {
            if s.len() > self.cfg.max_position_embeddings {
                return Err(EmbedError::Config(format!(
                    "sequence of {} tokens exceeds the model's {} positions",
                    s.len(),
                    self.cfg.max_position_embeddings
                )));
            }
            spans.push(total..total + s.len());
            total += s.len();
        }
        let mut x = self.embed_tokens(seqs, total)?;
        let mut qkv = vec![0.0f32; total * 3 * h];
        let mut ctx = vec![0.0f32; total * h];
        let mut mid = vec![0.0f32; total * inter];
        let scale = 1.0 / (dh as f32).sqrt();

        for layer in &self.layers {
            // Fused Q|K|V projection, bias preloaded into the output.
            fill_rows(&mut qkv, &layer.b_qkv);
            sgemm(
                &mut qkv,
                Mat::new(total, 3 * h, 3 * h),
                true,
                &x,
                Mat::new(total, h, h),
                &layer.w_qkv,
                Mat::new(h, 3 * h, 3 * h),
                Rhs::Plain,
                1.0,
                threads,
            );
            self.attention(&qkv, &mut ctx, &spans, heads, dh, scale);
            // x = LN(x + ctx·Wo + bo): the residual is the GEMM's starting value.
            sgemm(
                &mut x,
                Mat::new(total, h, h),
                true,
                &ctx,
                Mat::new(total, h, h),
                &layer.w_attn_out,
                Mat::new(h, h, h),
                Rhs::Plain,
                1.0,
                threads,
            );
            par_rows(&mut x, h, |rows| {
                bias_layernorm(
                    rows,
                    &layer.b_attn_out,
                    &layer.ln_attn.gamma,
                    &layer.ln_attn.beta,
                    self.eps,
                )
            });
            sgemm(
                &mut mid,
                Mat::new(total, inter, inter),
                false,
                &x,
                Mat::new(total, h, h),
                &layer.w_inter,
                Mat::new(h, inter, inter),
                Rhs::Plain,
                1.0,
                threads,
            );
            par_rows(&mut mid, inter, |rows| bias_gelu(rows, &layer.b_inter));
            sgemm(
                &mut x,
                Mat::new(total, h, h),
                true,
                &mid,
                Mat::new(total, inter, inter),
                &layer.w_out,
                Mat::new(inter, h, h),
                Rhs::Plain,
                1.0,
                threads,
            );
            par_rows(&mut x, h, |rows| {
                bias_layernorm(
                    rows,
                    &layer.b_out,
                    &layer.ln_out.gamma,
                    &layer.ln_out.beta,
                    self.eps,
                )
            });
        }
        Ok(x)
    }

    /// word + position + token-type(0) embeddings, then layer norm.
    fn embed_tokens(&self, seqs: &[Vec<u32>], total: usize) -> Result<Vec<f32>, EmbedError> {
        let h = self.cfg.hidden_size;
        let words = &self.mmap[self.word_emb.clone()];
        let mut x = vec![0.0f32; total * h];
        let mut rows = x.chunks_exact_mut(h);
        for s in seqs {
            for (pos, &id) in s.iter().enumerate() {
                let id = id as usize;
                if id >= self.cfg.vocab_size {
                    return Err(EmbedError::Tokenizer(format!(
                        "token id {id} outside the vocabulary of {}",
                        self.cfg.vocab_size
                    )));
                }
                let Some(row) = rows.next() else {
                    return Err(model_err("token count mismatch"));
                };
                let w = &words[id * h * 4..(id + 1) * h * 4];
                let p = &self.pos_emb[pos * h..(pos + 1) * h];
                for (((o, wb), p), t) in row
                    .iter_mut()
                    .zip(w.chunks_exact(4))
                    .zip(p)
                    .zip(&self.type_emb0)
                {
                    *o = f32::from_le_bytes([wb[0], wb[1], wb[2], wb[3]]) + p + t;
                }
            }
        }
        let zero = vec![0.0f32; h];
        par_rows(&mut x, h, |rows| {
            bias_layernorm(rows, &zero, &self.ln_emb.gamma, &self.ln_emb.beta, self.eps)
        });
        Ok(x)
    }

    /// Multi-head self-attention per (sequence, head), writing each head's context into its
    /// column block of `ctx`. No mask: packed sequences contain no padding.
    fn attention(
        &self,
        qkv: &[f32],
        ctx: &mut [f32],
        spans: &[Range<usize>],
        heads: usize,
        dh: usize,
        scale: f32,
    ) {
        let h = heads * dh;
        let ld = 3 * h;
        // Each task owns the rows of one sequence in `ctx` and fills all its heads.
        let mut ctx_rows: Vec<(&Range<usize>, &mut [f32])> = Vec::with_capacity(spans.len());
        let mut rest = ctx;
        for span in spans {
            let (mine, tail) = rest.split_at_mut(span.len() * h);
            ctx_rows.push((span, mine));
            rest = tail;
        }
        let tasks: Vec<_> = ctx_rows
            .into_iter()
            .flat_map(|(span, rows)| {
                split_heads(rows, h, dh, heads)
                    .into_iter()
                    .map(move |hd| (span, hd))
            })
            .collect();
        tasks.into_par_iter().for_each_init(
            Vec::new,
            |scores: &mut Vec<f32>, (span, (head, out))| {
                let l = span.len();
                if l == 0 {
                    return;
                }
                scores.clear();
                scores.resize(l * l, 0.0);
                let base = span.start * ld;
                let q = &qkv[base + head * dh..];
                let k = &qkv[base + h + head * dh..];
                let v = &qkv[base + 2 * h + head * dh..];
                sgemm(
                    scores,
                    Mat::new(l, l, l),
                    false,
                    q,
                    Mat::new(l, dh, ld),
                    k,
                    Mat::new(l, dh, ld),
                    Rhs::Transposed,
                    scale,
                    1,
                );
                softmax_rows(scores, l);
                let mut head_out = vec![0.0f32; l * dh];
                sgemm(
                    &mut head_out,
                    Mat::new(l, dh, dh),
                    false,
                    scores,
                    Mat::new(l, l, l),
                    v,
                    Mat::new(l, dh, ld),
                    Rhs::Plain,
                    1.0,
                    1,
                );
                for (dst, src) in out.into_iter().zip(head_out.chunks_exact(dh)) {
                    dst.copy_from_slice(src);
                }
            },
        );
    }
}

/// The rows of one sequence's context block, split by head: head `j` gets, for every token row,
/// the `dh`-wide column slice `j·dh..(j+1)·dh`.
fn split_heads(
    rows: &mut [f32],
    h: usize,
    dh: usize,
    heads: usize,
) -> Vec<(usize, Vec<&mut [f32]>)> {
    let mut per_head: Vec<(usize, Vec<&mut [f32]>)> = (0..heads).map(|j| (j, Vec::new())).collect();
    for row in rows.chunks_exact_mut(h) {
        for (j, part) in row.chunks_exact_mut(dh).enumerate() {
            per_head[j].1.push(part);
        }
    }
    per_head
}

/// Applies `f` to blocks of whole rows in parallel (on the current rayon pool).
fn par_rows(data: &mut [f32], width: usize, f: impl Fn(&mut [f32]) + Sync) {
    const ROWS_PER_TASK: usize = 64;
    data.par_chunks_mut(width * ROWS_PER_TASK).for_each(&f);
}
