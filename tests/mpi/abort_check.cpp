// A data-parallel training job in which rank 1 meets a bad label in its third step while rank 0 is already
// waiting for rank 1's gradients. The program does what a program should: prints the error with its rank
// and aborts the job (MpiCommunicator::abort), so rank 0 does not wait forever. expect_abort.sh checks that
// the job ends, fails, and shows the message.

#include <tapegrad/distributed/mpi.hpp>
#include <tapegrad/tapegrad.hpp>

#include <cstdio>
#include <memory>

namespace tg = tapegrad;

int main(int argc, char** argv) {
    tg::dist::MpiEnvironment env(argc, argv);
    tg::dist::MpiCommunicator comm;
    try {
        tg::Generator gen(1);
        auto net = std::make_shared<tg::nn::Sequential<float>>(tg::nn::Linear<float>(4, 8, gen), tg::nn::ReLU<float>(),
                                                                 tg::nn::Linear<float>(8, 3, gen));
        tg::dist::DataParallel<float> model(net, comm);
        tg::optim::SGD<float> opt(model.parameters(), {.lr = 0.1});
        const tg::TensorF x = tg::TensorF::uniform({16, 4}, -1, 1, gen);
        for (int step = 0; step < 5; ++step) {
            std::vector<int64_t> y(16, 1);
            if (comm.rank() == 1 && step == 2) y[5] = 7;  // out of range for 3 classes
            opt.zero_grad();
            tg::nn::cross_entropy(model(x), y).backward();
            opt.step();
        }
        std::printf("rank %d: finished all steps\n", comm.rank());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rank %d: %s\n", comm.rank(), e.what());
        std::fflush(stderr);
        comm.abort(1);
    }
    return 0;
}
