// A project of your own: train a network on a CSV file, then use it on new rows.
//
//   build/project train --data data/penguins.csv --label species
//   build/project predict --model model.safetensors --data data/new_penguins.csv
//   build/project train --data data/penguins.csv --label body_mass_g --task regress --ignore species
//
// `train` reads the CSV (a header row, numeric feature columns, one label column), splits the rows into
// training, validation and test sets with a seed, standardises the features with the training rows'
// mean and spread, trains an MLP with Adam on mini-batches, keeps the epoch that did best on the
// validation set, reports the test metrics once, and saves a checkpoint: the weights plus everything
// `predict` needs to use them (feature names, standardisation, class names) in the file's metadata.
//
// Classification (--task classify): one output per class, cross-entropy, accuracy and a confusion
// matrix. Regression (--task regress): one output, mean squared error on the standardised label, RMSE,
// MAE and R^2 = 1 - SS_residual / SS_total in the label's own units (R^2 = 0 is "always predict the
// mean", 1 is perfect).
//
// Start your project by changing the data, the flags' defaults and make_mlp; see README.md.

#include "csv.hpp"
#include "data.hpp"

#include <tapegrad/io/checkpoint.hpp>
#include <tapegrad/io/safetensors.hpp>
#include <tapegrad/tapegrad.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace tg = tapegrad;
namespace nn = tapegrad::nn;

namespace {

/// The network: inputs -> [Linear -> ReLU] per hidden size -> Linear(outputs).
std::shared_ptr<nn::Sequential<float>> make_mlp(int64_t inputs, const std::vector<int64_t>& hidden, int64_t outputs,
                                                tg::Generator& gen) {
    auto net = std::make_shared<nn::Sequential<float>>();
    int64_t width = inputs;
    for (const int64_t h : hidden) {
        net->push_back(nn::Linear<float>(width, h, gen));
        net->push_back(nn::ReLU<float>());
        width = h;
    }
    net->push_back(nn::Linear<float>(width, outputs, gen));
    return net;
}

/// Rows `rows` of a [n, cols] row-major matrix, as a tensor [rows.size(), cols].
tg::TensorF gather(const std::vector<float>& m, int64_t cols, const std::vector<int64_t>& rows) {
    tg::TensorF t = tg::TensorF::empty({static_cast<int64_t>(rows.size()), cols});
    for (size_t i = 0; i < rows.size(); ++i)
        for (int64_t c = 0; c < cols; ++c) t.data()[static_cast<int64_t>(i) * cols + c] = m[static_cast<size_t>(rows[i] * cols + c)];
    return t;
}
/// v[rows[0]], v[rows[1]], ...; nothing when v is empty (the labels of the other task).
template <class V>
std::vector<V> pick(const std::vector<V>& v, const std::vector<int64_t>& rows) {
    std::vector<V> out;
    if (v.empty()) return out;
    for (const int64_t r : rows) out.push_back(v[static_cast<size_t>(r)]);
    return out;
}

// ---- the checkpoint's metadata: plain text ------------------------------------------------------------------

std::string join(const std::vector<std::string>& v, char sep) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? std::string(1, sep) : "") + v[i];
    return s;
}
std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> v;
    std::stringstream in(s);
    for (std::string item; std::getline(in, item, sep);) v.push_back(item);
    return v;
}
std::string numbers_text(const std::vector<float>& v) {
    std::string s;
    char buf[32];
    for (const float x : v) {
        std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(x));
        s += (s.empty() ? "" : " ") + std::string(buf);
    }
    return s;
}
std::vector<float> numbers_of(const std::string& s) {
    std::vector<float> v;
    for (const std::string& item : split(s, ' ')) v.push_back(std::stof(item));
    return v;
}

/// Everything besides the weights that `predict` needs.
struct ModelInfo {
    project::Task task = project::Task::classify;
    std::string label;
    std::vector<std::string> features, classes;
    std::vector<int64_t> hidden;
    project::Standardizer x_scaler;
    float y_mean = 0, y_scale = 1;

    std::map<std::string, std::string> to_metadata() const {
        std::vector<std::string> h;
        for (const int64_t x : hidden) h.push_back(std::to_string(x));
        return {{"task", task == project::Task::classify ? "classify" : "regress"},
                {"label", label},
                {"features", join(features, '\n')},
                {"classes", join(classes, '\n')},
                {"hidden", join(h, ',')},
                {"x_mean", numbers_text(x_scaler.mean)},
                {"x_scale", numbers_text(x_scaler.scale)},
                {"y_mean", numbers_text({y_mean})},
                {"y_scale", numbers_text({y_scale})}};
    }
    static ModelInfo from_metadata(const std::map<std::string, std::string>& m, const std::string& path) {
        for (const char* key : {"task", "label", "features", "classes", "hidden", "x_mean", "x_scale", "y_mean", "y_scale"})
            if (m.count(key) == 0)
                throw tg::FormatError("'" + path + "' has no '" + key + "' in its metadata: was it saved by `project train`?");
        ModelInfo info;
        info.task = m.at("task") == "regress" ? project::Task::regress : project::Task::classify;
        info.label = m.at("label");
        info.features = split(m.at("features"), '\n');
        info.classes = split(m.at("classes"), '\n');
        for (const std::string& h : split(m.at("hidden"), ',')) info.hidden.push_back(std::stoll(h));
        info.x_scaler.mean = numbers_of(m.at("x_mean"));
        info.x_scaler.scale = numbers_of(m.at("x_scale"));
        info.y_mean = numbers_of(m.at("y_mean")).at(0);
        info.y_scale = numbers_of(m.at("y_scale")).at(0);
        return info;
    }
    [[nodiscard]] int64_t outputs() const {
        return task == project::Task::classify ? static_cast<int64_t>(classes.size()) : 1;
    }
};

/// The network's predictions for standardised rows x [n, features]: class ids, or numbers in the label's units.
struct Predictions {
    std::vector<int64_t> classes;
    std::vector<double> confidence, values;
};
Predictions predict(nn::Module<float>& net, const ModelInfo& info, const tg::TensorF& x) {
    tg::NoGradGuard no_grad;
    net.eval();
    const tg::TensorF out = net(x);
    Predictions p;
    if (info.task == project::Task::classify) {
        const tg::TensorF prob = tg::softmax(out, 1);
        for (int64_t i = 0; i < prob.size(0); ++i) {
            int64_t best = 0;
            for (int64_t c = 1; c < prob.size(1); ++c)
                if (prob(i, c) > prob(i, best)) best = c;
            p.classes.push_back(best);
            p.confidence.push_back(prob(i, best));
        }
    } else {
        for (int64_t i = 0; i < out.size(0); ++i) p.values.push_back(out(i, 0) * info.y_scale + info.y_mean);
    }
    return p;
}

/// Accuracy, or RMSE / MAE / R^2, printed; returns the result line's text.
std::string report(const Predictions& p, const ModelInfo& info, const std::vector<int64_t>& class_ids,
                   const std::vector<float>& y, const std::string& set) {
    char buf[160];
    if (info.task == project::Task::classify) {
        nn::ConfusionMatrix cm(static_cast<int>(info.classes.size()));
        cm.update(p.classes, class_ids);
        std::printf("%s confusion matrix (rows: true class, columns: predicted; classes", set.c_str());
        for (size_t c = 0; c < info.classes.size(); ++c) std::printf(" %zu=%s", c, info.classes[c].c_str());
        std::printf(")\n%s", cm.str().c_str());
        std::snprintf(buf, sizeof buf, "%s_accuracy=%.4f", set.c_str(), cm.accuracy());
    } else {
        double mean = 0, ss_res = 0, ss_tot = 0, abs_err = 0;
        for (const float v : y) mean += v;
        mean /= static_cast<double>(y.size());
        for (size_t i = 0; i < y.size(); ++i) {
            const double e = p.values[i] - y[i];
            ss_res += e * e;
            abs_err += std::abs(e);
            ss_tot += (y[i] - mean) * (y[i] - mean);
        }
        const double n = static_cast<double>(y.size());
        std::snprintf(buf, sizeof buf, "%s_rmse=%.4g %s_mae=%.4g %s_r2=%.4f", set.c_str(), std::sqrt(ss_res / n),
                      set.c_str(), abs_err / n, set.c_str(), ss_tot > 0 ? 1.0 - ss_res / ss_tot : 0.0);
    }
    return buf;
}

// ---- train ---------------------------------------------------------------------------------------------------

struct TrainArgs {
    std::string data, label, task = "classify", save = "model.safetensors";
    std::vector<std::string> ignore;
    std::vector<int64_t> hidden{32, 32};
    int epochs = 200;
    int64_t batch_size = 32;
    double lr = 0.01, val = 0.15, test = 0.15;
    uint64_t seed = 1;
};

int train(const TrainArgs& a) {
    const auto start = std::chrono::steady_clock::now();
    const project::Task task = a.task == "regress" ? project::Task::regress : project::Task::classify;
    const project::CsvTable table = project::read_csv(a.data);
    project::Problem p = project::make_problem(table, a.label, a.ignore, task);
    const auto cols = static_cast<int64_t>(p.features.size());
    const project::Split split = project::split_rows(p.rows, a.val, a.test, a.seed);
    std::printf("%s: %lld rows; label '%s'; %lld features; %zu train / %zu validation / %zu test rows\n", a.data.c_str(),
                static_cast<long long>(p.rows), p.label.c_str(), static_cast<long long>(cols), split.train.size(),
                split.val.size(), split.test.size());

    ModelInfo info;
    info.task = task;
    info.label = p.label;
    info.features = p.features;
    info.classes = p.classes;
    info.hidden = a.hidden;
    info.x_scaler = project::Standardizer::fit(p.x, cols, split.train);  // training rows only
    info.x_scaler.apply(p.x);
    if (task == project::Task::regress) {
        const project::Standardizer ys = project::Standardizer::fit(p.y, 1, split.train);
        info.y_mean = ys.mean[0];
        info.y_scale = ys.scale[0];
    }
    std::vector<float> y_std = p.y;  // the regression target, standardised like the features
    for (float& v : y_std) v = (v - info.y_mean) / info.y_scale;

    tg::Generator gen(a.seed);
    auto net = make_mlp(cols, a.hidden, info.outputs(), gen);
    tg::optim::Adam<float> opt(net->parameters(), {.lr = a.lr});
    std::printf("network: %lld", static_cast<long long>(cols));
    for (const int64_t h : a.hidden) std::printf(" -> %lld relu", static_cast<long long>(h));
    std::printf(" -> %lld; %lld parameters\n", static_cast<long long>(info.outputs()),
                static_cast<long long>(net->num_parameters()));

    const tg::TensorF x_val = gather(p.x, cols, split.val);
    // The validation loss picks the epoch to keep (smoother than accuracy, which ties over many epochs).
    const std::vector<int64_t> val_ids = pick(p.class_ids, split.val);
    const std::vector<float> val_y = pick(y_std, split.val);
    const auto val_loss = [&] {
        tg::NoGradGuard no_grad;
        net->eval();
        const tg::TensorF out = (*net)(x_val);
        return static_cast<double>(
            (task == project::Task::classify
                 ? nn::cross_entropy(out, val_ids)
                 : nn::mse_loss(out, tg::TensorF::from({static_cast<int64_t>(val_y.size()), 1}, val_y)))
                .item());
    };

    std::vector<std::vector<float>> best_weights;
    double best = INFINITY;
    int best_epoch = 0;
    std::vector<int64_t> order = split.train;
    for (int epoch = 1; epoch <= a.epochs; ++epoch) {
        net->train();
        for (int64_t i = static_cast<int64_t>(order.size()) - 1; i > 0; --i)  // a fresh order every epoch
            std::swap(order[static_cast<size_t>(i)], order[gen.below(static_cast<uint64_t>(i + 1))]);
        double loss_sum = 0;
        for (size_t b = 0; b < order.size(); b += static_cast<size_t>(a.batch_size)) {
            const std::vector<int64_t> rows(order.begin() + static_cast<std::ptrdiff_t>(b),
                                            order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), b + static_cast<size_t>(a.batch_size))));
            const tg::TensorF x = gather(p.x, cols, rows);
            opt.zero_grad();
            const tg::TensorF out = (*net)(x);
            const tg::TensorF loss = task == project::Task::classify
                                         ? nn::cross_entropy(out, pick(p.class_ids, rows))
                                         : nn::mse_loss(out, tg::TensorF::from({static_cast<int64_t>(rows.size()), 1}, pick(y_std, rows)));
            loss.backward();
            opt.step();
            loss_sum += static_cast<double>(loss.item()) * static_cast<double>(rows.size());
        }
        const double score = val_loss();
        if (score < best) {  // keep the weights of the best epoch on the validation set
            best = score;
            best_epoch = epoch;
            best_weights.clear();
            for (const tg::TensorF& w : net->parameters()) best_weights.push_back(w.to_vector());
        }
        if (epoch == 1 || epoch % std::max(1, a.epochs / 10) == 0 || epoch == a.epochs)
            std::printf("epoch %4d  train loss %.4f  validation loss %.4f\n", epoch,
                        loss_sum / static_cast<double>(order.size()), score);
    }
    {
        tg::NoGradGuard no_grad;
        auto params = net->parameters();
        for (size_t i = 0; i < params.size(); ++i)
            params[i].copy_(tg::TensorF::from(params[i].shape(), best_weights[i]));
    }
    std::printf("kept epoch %d (best on the validation set)\n", best_epoch);

    const Predictions test = predict(*net, info, gather(p.x, cols, split.test));
    const std::string metrics = report(test, info, pick(p.class_ids, split.test), pick(p.y, split.test), "test");
    tg::io::save(a.save, *net, info.to_metadata());
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("saved %s\n", a.save.c_str());
    std::printf("result: %s best_epoch=%d seconds=%.2f\n", metrics.c_str(), best_epoch, secs);
    return 0;
}

// ---- predict -------------------------------------------------------------------------------------------------

int predict_file(const std::string& model_path, const std::string& data_path) {
    const ModelInfo info = ModelInfo::from_metadata(tg::io::load_safetensors(model_path).metadata, model_path);
    tg::Generator gen(0);
    auto net = make_mlp(static_cast<int64_t>(info.features.size()), info.hidden, info.outputs(), gen);
    tg::io::load(model_path, *net);

    const project::CsvTable table = project::read_csv(data_path);
    std::vector<float> x = project::features_by_name(table, info.features);
    info.x_scaler.apply(x);
    const auto n = static_cast<int64_t>(table.rows.size());
    const Predictions p = predict(*net, info, tg::TensorF::from({n, static_cast<int64_t>(info.features.size())}, x));

    std::printf("line,predicted_%s%s\n", info.label.c_str(), info.task == project::Task::classify ? ",probability" : "");
    for (int64_t i = 0; i < n; ++i) {
        if (info.task == project::Task::classify)
            std::printf("%lld,%s,%.4f\n", static_cast<long long>(table.lines[static_cast<size_t>(i)]),
                        info.classes[static_cast<size_t>(p.classes[static_cast<size_t>(i)])].c_str(),
                        p.confidence[static_cast<size_t>(i)]);
        else
            std::printf("%lld,%.6g\n", static_cast<long long>(table.lines[static_cast<size_t>(i)]),
                        p.values[static_cast<size_t>(i)]);
    }
    // With the true labels in the file, say how good the predictions are.
    if (std::find(table.header.begin(), table.header.end(), info.label) != table.header.end()) {
        const size_t col = project::find_column(table, info.label);
        std::vector<int64_t> ids;
        std::vector<float> y;
        for (size_t r = 0; r < table.rows.size(); ++r) {
            if (info.task == project::Task::regress) {
                y.push_back(static_cast<float>(project::cell_number(table, r, col)));
                continue;
            }
            const std::string& name = table.rows[r][col];
            const auto it = std::find(info.classes.begin(), info.classes.end(), name);
            if (it == info.classes.end())
                throw project::CsvError(data_path + ":" + std::to_string(table.lines[r]) + ": class '" + name +
                                        "' was not in the training data");
            ids.push_back(it - info.classes.begin());
        }
        std::printf("result: %s rows=%lld\n", report(p, info, ids, y, "file").c_str(), static_cast<long long>(n));
    } else {
        std::printf("result: predicted rows=%lld\n", static_cast<long long>(n));
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Train an MLP on a CSV file, and predict with it"};
    app.require_subcommand(1);

    TrainArgs t;
    CLI::App* train_cmd = app.add_subcommand("train", "Train on a CSV file, report test metrics, save a checkpoint");
    train_cmd->add_option("--data", t.data, "CSV file with a header row")->required()->check(CLI::ExistingFile);
    train_cmd->add_option("--label", t.label, "The label column: its name, or its index from 0")->required();
    train_cmd->add_option("--task", t.task, "classify or regress")->check(CLI::IsMember({"classify", "regress"}))->capture_default_str();
    train_cmd->add_option("--ignore", t.ignore, "Columns to leave out, by name or index (comma separated)")->delimiter(',');
    train_cmd->add_option("--hidden", t.hidden, "Hidden layer sizes, comma separated")->delimiter(',')->check(CLI::Range(int64_t{1}, int64_t{65536}))->capture_default_str();
    train_cmd->add_option("--epochs", t.epochs, "Passes over the training rows")->check(CLI::Range(1, 1000000))->capture_default_str();
    train_cmd->add_option("--batch-size", t.batch_size, "Rows per Adam step")->check(CLI::Range(int64_t{1}, int64_t{1} << 20))->capture_default_str();
    train_cmd->add_option("--lr", t.lr, "Adam learning rate")->check(CLI::Range(1e-7, 10.0))->capture_default_str();
    train_cmd->add_option("--val", t.val, "Fraction of rows for validation")->check(CLI::Range(0.0, 1.0))->capture_default_str();
    train_cmd->add_option("--test", t.test, "Fraction of rows for the final test")->check(CLI::Range(0.0, 1.0))->capture_default_str();
    train_cmd->add_option("--seed", t.seed, "Seed of the split, the weights and the batch order")->capture_default_str();
    train_cmd->add_option("--save", t.save, "Where to write the checkpoint")->capture_default_str();

    std::string model_path = "model.safetensors", data_path;
    CLI::App* predict_cmd = app.add_subcommand("predict", "Predict the label of each row of a CSV file");
    predict_cmd->add_option("--model", model_path, "A checkpoint written by train")->check(CLI::ExistingFile)->capture_default_str();
    predict_cmd->add_option("--data", data_path, "CSV file with the model's feature columns (by name)")->required()->check(CLI::ExistingFile);

    CLI11_PARSE(app, argc, argv);
    try {
        if (*train_cmd) return train(t);
        return predict_file(model_path, data_path);
    } catch (const project::CsvError& e) {
        std::fprintf(stderr, "project: %s\n", e.what());
    } catch (const tg::Error& e) {
        std::fprintf(stderr, "project: %s\n", e.what());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "project: %s\n", e.what());
    }
    return 1;
}
