//! A multi-layer perceptron classifier in plain `f64`: dense layers with ReLU between
//! them, softmax and cross-entropy on top, and the gradient of the loss by
//! backpropagation.
//!
//! All parameters live in one flat vector, layer after layer (each layer's weights,
//! `outputs × inputs` row-major, then its biases), so an optimizer is a loop over two
//! slices and a gradient check perturbs one index at a time.

use crate::rng::Rng;

/// A fully connected network: `sizes[0]` inputs, ReLU hidden layers of
/// `sizes[1..n-1]` units, `sizes[n-1]` classes.
#[derive(Debug, Clone)]
pub(crate) struct Mlp {
    sizes: Vec<usize>,
    params: Vec<f64>,
}

/// Where one layer's parameters are in the flat vector.
#[derive(Debug, Clone, Copy)]
struct Layer {
    inputs: usize,
    outputs: usize,
    /// Index of the first weight; the biases follow the `inputs × outputs` weights.
    offset: usize,
}

impl Layer {
    fn weights(self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.inputs * self.outputs
    }

    fn biases(self) -> std::ops::Range<usize> {
        let start = self.offset + self.inputs * self.outputs;
        start..start + self.outputs
    }
}

/// What the forward pass keeps for the backward pass: each layer's input and
/// pre-activation.
struct Trace {
    inputs: Vec<Vec<f64>>,
    pre_activations: Vec<Vec<f64>>,
}

impl Mlp {
    /// A network with random weights (normal; He initialisation for the hidden layers,
    /// Xavier for the output layer) and zero biases.
    ///
    /// # Panics
    ///
    /// If there are fewer than two sizes or a size is zero.
    pub(crate) fn new(sizes: &[usize], rng: &mut Rng) -> Mlp {
        assert!(sizes.len() >= 2 && sizes.iter().all(|&n| n > 0), "bad layer sizes {sizes:?}");
        let count = sizes.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
        let mut mlp = Mlp { sizes: sizes.to_vec(), params: vec![0.0; count] };
        let last = mlp.layers().count() - 1;
        for (index, layer) in mlp.layers().collect::<Vec<_>>().into_iter().enumerate() {
            let (fan_in, fan_out) = (layer.inputs as f64, layer.outputs as f64);
            let std = if index < last {
                (2.0 / fan_in).sqrt()
            } else {
                (2.0 / (fan_in + fan_out)).sqrt()
            };
            for w in &mut mlp.params[layer.weights()] {
                *w = std * rng.normal();
            }
        }
        mlp
    }

    /// All parameters, flat.
    pub(crate) fn params(&self) -> &[f64] {
        &self.params
    }

    /// All parameters, flat, to update.
    pub(crate) fn params_mut(&mut self) -> &mut [f64] {
        &mut self.params
    }

    fn layers(&self) -> impl Iterator<Item = Layer> + '_ {
        let mut offset = 0;
        self.sizes.windows(2).map(move |w| {
            let layer = Layer { inputs: w[0], outputs: w[1], offset };
            offset += w[0] * w[1] + w[1];
            layer
        })
    }

    /// The class scores (before softmax) for one input.
    pub(crate) fn logits(&self, input: &[f64]) -> Vec<f64> {
        let mut trace = self.forward(input);
        trace.pre_activations.pop().expect("a network has at least one layer")
    }

    fn forward(&self, input: &[f64]) -> Trace {
        assert_eq!(input.len(), self.sizes[0], "input size");
        let layer_count = self.sizes.len() - 1;
        let mut trace = Trace {
            inputs: Vec::with_capacity(layer_count),
            pre_activations: Vec::with_capacity(layer_count),
        };
        let mut a = input.to_vec();
        for (index, layer) in self.layers().enumerate() {
            let weights = &self.params[layer.weights()];
            let biases = &self.params[layer.biases()];
            let z: Vec<f64> = (0..layer.outputs)
                .map(|o| {
                    let row = &weights[o * layer.inputs..(o + 1) * layer.inputs];
                    biases[o] + row.iter().zip(&a).map(|(w, x)| w * x).sum::<f64>()
                })
                .collect();
            let next = if index + 1 < layer_count {
                z.iter().map(|&z| z.max(0.0)).collect()
            } else {
                Vec::new()
            };
            trace.inputs.push(std::mem::replace(&mut a, next));
            trace.pre_activations.push(z);
        }
        trace
    }

    /// The cross-entropy loss of one example, and its gradient with respect to every
    /// parameter added into `gradient` (so a batch accumulates into one vector).
    pub(crate) fn accumulate_gradient(
        &self,
        input: &[f64],
        class: usize,
        gradient: &mut [f64],
    ) -> f64 {
        assert_eq!(gradient.len(), self.params.len(), "gradient size");
        let trace = self.forward(input);
        let logits = trace.pre_activations.last().expect("a network has at least one layer");
        let loss = cross_entropy(logits, class);
        // d loss / d logits = softmax - one-hot.
        let mut delta = softmax(logits);
        delta[class] -= 1.0;
        let layers: Vec<Layer> = self.layers().collect();
        for (index, layer) in layers.iter().enumerate().rev() {
            let a = &trace.inputs[index];
            let (weights, biases) = (layer.weights(), layer.biases());
            for (o, &d) in delta.iter().enumerate() {
                let row = &mut gradient[weights.start + o * layer.inputs..][..layer.inputs];
                for (g, x) in row.iter_mut().zip(a) {
                    *g += d * x;
                }
                gradient[biases.start + o] += d;
            }
            if index > 0 {
                let w = &self.params[weights];
                // ReLU passes the gradient where its input was positive.
                let z = &trace.pre_activations[index - 1];
                delta = (0..layer.inputs)
                    .map(|i| {
                        let back: f64 = delta
                            .iter()
                            .enumerate()
                            .map(|(o, d)| w[o * layer.inputs + i] * d)
                            .sum();
                        if z[i] > 0.0 { back } else { 0.0 }
                    })
                    .collect();
            }
        }
        loss
    }
}

/// `-log softmax(logits)[class]`, computed stably.
pub(crate) fn cross_entropy(logits: &[f64], class: usize) -> f64 {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let log_sum = logits.iter().map(|z| (z - max).exp()).sum::<f64>().ln() + max;
    log_sum - logits[class]
}

fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = logits.iter().map(|z| (z - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// The index of the largest score (the first, on ties).
pub(crate) fn argmax(scores: &[f64]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compares the backpropagated gradient of a small network's loss on a few examples
    /// with central finite differences, parameter by parameter.
    fn check_gradient(sizes: &[usize], seed: u64) {
        let mut rng = Rng::new(seed, 0);
        let mut mlp = Mlp::new(sizes, &mut rng);
        // Non-zero biases, so they matter to the check too.
        for p in mlp.params_mut() {
            *p += 0.1 * rng.normal();
        }
        let classes = sizes[sizes.len() - 1];
        let examples: Vec<(Vec<f64>, usize)> =
            (0..4).map(|i| ((0..sizes[0]).map(|_| rng.normal()).collect(), i % classes)).collect();
        let loss = |mlp: &Mlp| -> f64 {
            examples.iter().map(|(x, c)| cross_entropy(&mlp.logits(x), *c)).sum()
        };
        let mut gradient = vec![0.0; mlp.params().len()];
        let mut total = 0.0;
        for (x, c) in &examples {
            total += mlp.accumulate_gradient(x, *c, &mut gradient);
        }
        assert!((total - loss(&mlp)).abs() < 1e-12, "the loss is the forward loss");

        let h = 1e-6;
        for (i, &backprop) in gradient.iter().enumerate() {
            let original = mlp.params()[i];
            mlp.params_mut()[i] = original + h;
            let up = loss(&mlp);
            mlp.params_mut()[i] = original - h;
            let down = loss(&mlp);
            mlp.params_mut()[i] = original;
            let numeric = (up - down) / (2.0 * h);
            let error = (numeric - backprop).abs() / numeric.abs().max(backprop.abs()).max(1e-3);
            assert!(
                error < 1e-6,
                "{sizes:?} seed {seed} parameter {i}: backprop {backprop} vs numeric {numeric}"
            );
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        for seed in 0..5 {
            check_gradient(&[3, 4, 3], seed);
            check_gradient(&[2, 5, 4, 3], seed);
            check_gradient(&[4, 2], seed);
        }
    }

    #[test]
    fn cross_entropy_is_stable_and_correct() {
        let ln3 = 3f64.ln();
        assert!((cross_entropy(&[0.0, 0.0, 0.0], 1) - ln3).abs() < 1e-15);
        assert!((cross_entropy(&[1000.0, 1000.0, 1000.0], 2) - ln3).abs() < 1e-12);
        assert!(cross_entropy(&[0.0, 800.0], 0).is_finite());
        assert!(cross_entropy(&[50.0, 0.0], 0) < 1e-20);
        let p = softmax(&[1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-15);
    }

    #[test]
    fn argmax_takes_the_first_largest() {
        assert_eq!(argmax(&[0.1, 0.7, 0.2]), 1);
        assert_eq!(argmax(&[0.5, 0.5, 0.1]), 0);
        assert_eq!(argmax(&[-3.0]), 0);
    }

    #[test]
    fn initialisation_scales_with_fan_in() {
        let mut rng = Rng::new(9, 0);
        let mlp = Mlp::new(&[200, 100, 3], &mut rng);
        let first = &mlp.params()[..200 * 100];
        let var = first.iter().map(|w| w * w).sum::<f64>() / first.len() as f64;
        // He: variance 2 / fan_in.
        assert!((var / (2.0 / 200.0) - 1.0).abs() < 0.05, "variance {var}");
        assert!(mlp.params()[200 * 100..200 * 100 + 100].iter().all(|&b| b == 0.0));
    }
}
