#pragma once
/// \file
/// MNIST (and Fashion-MNIST, which shares its format and file names) as ready-to-train datasets.
/// Needs zlib (tapegrad::io target) through data/idx.hpp.

#include <tapegrad/data/dataset.hpp>
#include <tapegrad/data/idx.hpp>

#include <filesystem>

namespace tapegrad::data {

struct ImageOptions {
    /// Pixels are scaled to [0, 1], then standardised: (p / 255 - mean) / stddev. The defaults are the
    /// MNIST training set's own statistics, the values the PyTorch examples use.
    double mean = 0.1307;
    double stddev = 0.3081;
    /// [N, rows*cols] for dense networks; false gives [N, 1, rows, cols] for convolutions.
    bool flatten = true;
};

/// Turns an ImageSet (bytes) into a normalised float dataset.
template <Scalar T = float>
Dataset<T> to_dataset(const ImageSet& s, ImageOptions opt = {}) {
    TAPEGRAD_CHECK(opt.stddev > 0, ValueError, "to_dataset: stddev must be positive, got ", opt.stddev);
    // An ImageSet can be built by hand: its fields must agree before pixels are copied into the tensor.
    TAPEGRAD_CHECK(s.count >= 0 && s.rows >= 0 && s.cols >= 0 &&
                       static_cast<int64_t>(s.pixels.size()) == s.count * s.rows * s.cols &&
                       static_cast<int64_t>(s.labels.size()) == s.count,
                   ShapeError, "to_dataset: ImageSet of ", s.count, " images of ", s.rows, "x", s.cols, " holds ",
                   s.pixels.size(), " pixels and ", s.labels.size(), " labels");
    const Shape shape = opt.flatten ? Shape{s.count, s.rows * s.cols} : Shape{s.count, 1, s.rows, s.cols};
    Dataset<T> ds{Tensor<T>::empty(shape), std::vector<int64_t>(s.labels.begin(), s.labels.end())};
    const T scale = static_cast<T>(1.0 / (255.0 * opt.stddev));
    const T shift = static_cast<T>(opt.mean / opt.stddev);
    T* dst = ds.features.data();
    for (size_t i = 0; i < s.pixels.size(); ++i) dst[i] = static_cast<T>(s.pixels[i]) * scale - shift;
    return ds;
}

template <Scalar T = float>
struct MnistDatasets {
    Dataset<T> train, test;
};

/// Loads the four MNIST-style IDX files (raw or .gz) from `dir`.
template <Scalar T = float>
MnistDatasets<T> load_mnist(const std::filesystem::path& dir, ImageOptions opt = {}) {
    MnistFiles f = load_mnist_folder(dir);
    return {to_dataset<T>(f.train, opt), to_dataset<T>(f.test, opt)};
}

}  // namespace tapegrad::data
