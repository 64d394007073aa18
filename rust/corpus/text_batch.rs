//! Documents laid end to end in one buffer: how batches of documents travel
//! between a reader and the workers that count or encode them.

/// Documents laid end to end, with where each ends.
#[derive(Debug, Default)]
pub struct TextBatch {
    text: String,
    ends: Vec<usize>,
}

impl TextBatch {
    pub fn push(&mut self, document: &str) {
        self.text.push_str(document);
        self.ends.push(self.text.len());
    }

    pub fn bytes(&self) -> usize {
        self.text.len()
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    /// The documents with indices in `range`.
    pub fn documents(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = &str> {
        range.map(|i| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            &self.text[start..self.ends[i]]
        })
    }

    /// Splits the documents into about `parts` runs of similar byte size.
    pub fn runs(&self, parts: usize) -> Vec<std::ops::Range<usize>> {
        let target = self.text.len().div_ceil(parts.max(1)).max(1);
        let mut runs = Vec::with_capacity(parts);
        let mut start = 0;
        let mut run_start_byte = 0;
        for (i, &end) in self.ends.iter().enumerate() {
            if end - run_start_byte >= target || i + 1 == self.ends.len() {
                runs.push(start..i + 1);
                start = i + 1;
                run_start_byte = end;
            }
        }
        runs
    }
}
