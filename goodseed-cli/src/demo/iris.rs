//! The Iris data set (Fisher, 1936), shipped as `data/iris.csv` and embedded in the
//! binary, and the small CSV parser that reads it.
//!
//! The format is strict, since we write the file ourselves: the header
//! `sepal_length,sepal_width,petal_length,petal_width,species`, then one row per flower
//! with four finite numbers and a species name. Errors name the line and what was wrong.

use std::fmt;

/// The data file, as shipped in the repository (see `data/README.md`).
pub(crate) const IRIS_CSV: &str = include_str!("../../data/iris.csv");

/// The header line the file must start with.
const HEADER: &str = "sepal_length,sepal_width,petal_length,petal_width,species";

/// Names of the four feature columns, in file order.
pub(crate) const FEATURE_NAMES: [&str; FEATURES] =
    ["sepal_length", "sepal_width", "petal_length", "petal_width"];

/// Measurements per flower (in centimetres).
pub(crate) const FEATURES: usize = 4;

/// The three species, the classes to predict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Species {
    /// Iris setosa.
    Setosa,
    /// Iris versicolor.
    Versicolor,
    /// Iris virginica.
    Virginica,
}

impl Species {
    /// Every species, in class-index order.
    pub(crate) const ALL: [Species; 3] = [Species::Setosa, Species::Versicolor, Species::Virginica];

    /// The class index: the position in [`Species::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The name used in the file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Species::Setosa => "setosa",
            Species::Versicolor => "versicolor",
            Species::Virginica => "virginica",
        }
    }
}

/// One flower: its measurements and species.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    /// Sepal length, sepal width, petal length, petal width, in centimetres.
    pub(crate) features: [f64; FEATURES],
    /// What it is.
    pub(crate) species: Species,
}

/// The embedded data set: 150 flowers, 50 of each species.
pub(crate) fn load() -> Result<Vec<Sample>, ParseError> {
    parse(IRIS_CSV)
}

/// Parses Iris CSV text (the header, then at least one row). A final newline is
/// optional and `\r\n` line ends are accepted.
pub(crate) fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut lines = text.lines().enumerate().map(|(i, line)| (i + 1, line));
    let Some((_, header)) = lines.next() else {
        return Err(ParseError { line: 1, problem: Problem::Empty });
    };
    if header != HEADER {
        return Err(ParseError { line: 1, problem: Problem::Header(header.to_owned()) });
    }
    let mut samples = Vec::new();
    for (number, line) in lines {
        samples.push(parse_row(line).map_err(|problem| ParseError { line: number, problem })?);
    }
    if samples.is_empty() {
        return Err(ParseError { line: 2, problem: Problem::NoRows });
    }
    Ok(samples)
}

fn parse_row(line: &str) -> Result<Sample, Problem> {
    let fields: Vec<&str> = line.split(',').collect();
    let [a, b, c, d, species] = fields[..] else {
        return Err(Problem::FieldCount(fields.len()));
    };
    let mut features = [0.0; FEATURES];
    for ((slot, text), column) in features.iter_mut().zip([a, b, c, d]).zip(FEATURE_NAMES) {
        *slot = match text.parse::<f64>() {
            Ok(x) if x.is_finite() => x,
            _ => return Err(Problem::Number { column, text: text.to_owned() }),
        };
    }
    let species = Species::ALL
        .into_iter()
        .find(|s| s.name() == species)
        .ok_or_else(|| Problem::Species(species.to_owned()))?;
    Ok(Sample { features, species })
}

/// Iris CSV text that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    /// The 1-based line number.
    line: usize,
    /// What was wrong with it.
    problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    Empty,
    Header(String),
    NoRows,
    FieldCount(usize),
    Number { column: &'static str, text: String },
    Species(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        match &self.problem {
            Problem::Empty => write!(f, "the file is empty, expected the header {HEADER:?}"),
            Problem::Header(found) => write!(f, "expected the header {HEADER:?}, found {found:?}"),
            Problem::NoRows => write!(f, "no rows after the header"),
            Problem::FieldCount(n) => write!(f, "expected 5 comma-separated fields, found {n}"),
            Problem::Number { column, text } => {
                write!(f, "{column} must be a finite number, found {text:?}")
            }
            Problem::Species(found) => {
                write!(f, "species must be setosa, versicolor or virginica, found {found:?}")
            }
        }
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "sepal_length,sepal_width,petal_length,petal_width,species\n";

    /// Parses `input` and compares the outcome, written as the species of each row or
    /// as the error message, with `want`.
    fn check(input: &str, want: &str) {
        let got = match parse(input) {
            Ok(samples) => samples.iter().map(|s| s.species.name()).collect::<Vec<_>>().join(" "),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, want, "{input:?}");
    }

    #[test]
    fn reads_good_input() {
        check(&format!("{H}5.1,3.5,1.4,0.2,setosa"), "setosa");
        check(&format!("{H}5.1,3.5,1.4,0.2,setosa\n6,2.2,5,1.5,virginica\n"), "setosa virginica");
        check(&format!("{H}7,3.2,4.7,1.4,versicolor\n").replace('\n', "\r\n"), "versicolor");
        check(&format!("{H}1e0,-0.5,+2,.5,setosa\n"), "setosa");
    }

    #[test]
    fn names_the_line_and_the_problem() {
        let header = "expected the header \
            \"sepal_length,sepal_width,petal_length,petal_width,species\"";
        check("", &format!("error: line 1: the file is empty, {header}"));
        check("a,b,c\n1,2,3\n", &format!("error: line 1: {header}, found \"a,b,c\""));
        check(
            &H.replace(',', ";"),
            &format!("error: line 1: {header}, found {:?}", H.trim().replace(',', ";")),
        );
        check(H, "error: line 2: no rows after the header");
        check(
            &format!("{H}5.1,3.5,1.4,0.2\n"),
            "error: line 2: expected 5 comma-separated fields, found 4",
        );
        check(
            &format!("{H}5.1,3.5,1.4,0.2,setosa\n5.1,3.5,1.4,0.2,setosa,x\n"),
            "error: line 3: expected 5 comma-separated fields, found 6",
        );
        check(
            &format!("{H}5.1,3.5,1.4,0.2,setosa\n\n5.1,3.5,1.4,0.2,setosa\n"),
            "error: line 3: expected 5 comma-separated fields, found 1",
        );
        check(
            &format!("{H}5.1,3.5,abc,0.2,setosa\n"),
            "error: line 2: petal_length must be a finite number, found \"abc\"",
        );
        check(
            &format!("{H}5.1, 3.5,1.4,0.2,setosa\n"),
            "error: line 2: sepal_width must be a finite number, found \" 3.5\"",
        );
        check(
            &format!("{H},3.5,1.4,0.2,setosa\n"),
            "error: line 2: sepal_length must be a finite number, found \"\"",
        );
        check(
            &format!("{H}5.1,3.5,1.4,NaN,setosa\n"),
            "error: line 2: petal_width must be a finite number, found \"NaN\"",
        );
        check(
            &format!("{H}5.1,3.5,1.4,inf,setosa\n"),
            "error: line 2: petal_width must be a finite number, found \"inf\"",
        );
        check(
            &format!("{H}5.1,3.5,1.4,0.2,Iris-setosa\n"),
            "error: line 2: species must be setosa, versicolor or virginica, found \"Iris-setosa\"",
        );
    }

    #[test]
    fn the_shipped_file_is_the_iris_data_set() {
        let samples = load().expect("the shipped file parses");
        assert_eq!(samples.len(), 150);
        for species in Species::ALL {
            assert_eq!(samples.iter().filter(|s| s.species == species).count(), 50, "{species:?}");
        }
        // The first row, and rows 35 and 38 as Fisher printed them (the UCI copy's
        // `iris.data` has errors in both).
        let features = |i: usize| samples[i - 1].features;
        assert_eq!(features(1), [5.1, 3.5, 1.4, 0.2]);
        assert_eq!(features(35), [4.9, 3.1, 1.5, 0.2]);
        assert_eq!(features(38), [4.9, 3.6, 1.4, 0.1]);
        assert_eq!(
            samples[149],
            Sample { features: [5.9, 3.0, 5.1, 1.8], species: Species::Virginica }
        );
        // Column sums, a checksum of every value.
        let sums: Vec<f64> = (0..FEATURES)
            .map(|j| (samples.iter().map(|s| s.features[j]).sum::<f64>() * 10.0).round() / 10.0)
            .collect();
        assert_eq!(sums, [876.5, 458.6, 563.7, 179.9]);
    }
}
