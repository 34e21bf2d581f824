// spm_shim.cc — the project's only C++ file: train, load, encode and decode through Debian's
// libsentencepiece behind the extern "C" API of spm_shim.h. Every entry point catches C++
// exceptions and turns util::Status into -1 + message, so nothing C++ crosses into C.
// It is not the tokenizer interface and writes no files (the C side writes atomically).
//
// Trainer options, chosen so that decode(encode(x)) == x byte for byte:
//   normalization_rule_name=identity  no NFKC: the bytes the model sees are the bytes of the file
//   add_dummy_prefix=false            no space invented at the start of every chunk
//   remove_extra_whitespaces=false    runs of spaces, leading/trailing spaces survive
//   byte_fallback=true                a character never seen in training becomes <0xXX> pieces,
//                                     never <unk>
//   character_coverage=1.0            every character seen in training gets its own piece
//   allow_whitespace_only_pieces=true runs of spaces (code indentation) may become one piece
//   split_by_whitespace=true          (the default, relied on) no piece crosses the start of a
//                                     word, so long lines can be cut before a word's leading space
//   split_digits=true                 numbers are spelled digit by digit: consistent tokens for
//                                     arithmetic-like text, and no vocabulary spent on numbers
//   bos_id=-1, eos_id=-1              the LM trains on a plain stream and uses no sentence
//                                     markers; two more slots for real pieces (<unk> stays id 0,
//                                     SentencePiece requires it)
//   hard_vocab_limit=true             a vocabulary the text cannot fill is an error, not a
//                                     silently smaller model (we also check the piece count)
//   max_sentence_length=16384         our iterator cuts lines longer than 8192 bytes at a space
//                                     (or a UTF-8 boundary), so no text is silently skipped
//   input_sentence_size=2000000       a huge corpus trains on a 2M-line random sample
//   minloglevel=2                     the trainer's INFO/WARNING chatter stays off stderr
// The training text is split at '\n', so no piece ever contains a newline: encoding in chunks
// cut after newlines gives the same ids as encoding the whole text at once.
#include "tokenizer/spm_shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

struct spm_shim {
    sentencepiece::SentencePieceProcessor sp;
    std::vector<std::string> pieces; // bytes each id contributes (see spm_shim_piece_bytes)
};

namespace {

int fail(char *msg, size_t cap, const std::string &what)
{
    if (cap) {
        std::snprintf(msg, cap, "%s", what.c_str());
    }
    return -1;
}

const size_t kMaxLine = 8192;

// Feeds the trainer the text line by line; a line longer than kMaxLine is cut before its last
// space in range (else at a UTF-8 character boundary) so the trainer never drops it.
class text_lines : public sentencepiece::SentenceIterator {
  public:
    text_lines(const char *text, size_t len) : text_(text), len_(len) { Next(); }
    bool done() const override { return done_; }
    const std::string &value() const override { return line_; }
    sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }
    void Next() override
    {
        for (;;) {
            if (pos_ >= len_) {
                done_ = true;
                return;
            }
            size_t end = pos_;
            while (end < len_ && text_[end] != '\n' && end - pos_ < kMaxLine)
                end++;
            size_t next = end;
            if (end < len_ && text_[end] == '\n') {
                next = end + 1;
            } else if (end < len_) { // over-long: back up to a space, else a UTF-8 boundary
                size_t cut = end;
                while (cut > pos_ + kMaxLine / 2 && text_[cut] != ' ')
                    cut--;
                if (text_[cut] != ' ') {
                    cut = end;
                    while (cut > pos_ && (static_cast<unsigned char>(text_[cut]) & 0xC0) == 0x80)
                        cut--;
                    if (cut == pos_)
                        cut = end;
                }
                end = next = cut;
            }
            line_.assign(text_ + pos_, end - pos_);
            pos_ = next;
            if (!line_.empty())
                return;
        }
    }

  private:
    const char *text_;
    size_t len_;
    size_t pos_ = 0;
    bool done_ = false;
    std::string line_;
};

// The unknown piece's surface in SentencePiece's decoder (its default unk_surface).
const char kUnkSurface[] = " \xE2\x81\x87 ";

int fill_pieces(spm_shim *s)
{
    int n = s->sp.GetPieceSize();
    s->pieces.resize(static_cast<size_t>(n));
    for (int id = 0; id < n; id++) {
        std::string &out = s->pieces[static_cast<size_t>(id)];
        if (s->sp.IsByte(id)) {
            const std::string &p = s->sp.IdToPiece(id); // "<0xAB>"
            out.assign(1, static_cast<char>(std::strtol(p.c_str() + 3, nullptr, 16)));
        } else if (s->sp.IsControl(id) || s->sp.IsUnused(id)) {
            out.clear();
        } else if (s->sp.IsUnknown(id)) {
            out = kUnkSurface;
        } else {
            const std::string &p = s->sp.IdToPiece(id);
            out.clear();
            for (size_t i = 0; i < p.size(); i++) {
                if (i + 2 < p.size() && p.compare(i, 3, "\xE2\x96\x81") == 0) {
                    out.push_back(' ');
                    i += 2;
                } else {
                    out.push_back(p[i]);
                }
            }
        }
    }
    return 0;
}

} // namespace

extern "C" int spm_shim_train(const char *text, size_t len, int vocab, const char *type, int threads,
                              char **model, size_t *model_len, char *msg, size_t cap)
{
    try {
        std::unordered_map<std::string, std::string> args = {
            {"model_type", type},
            {"vocab_size", std::to_string(vocab)},
            {"normalization_rule_name", "identity"},
            {"add_dummy_prefix", "false"},
            {"remove_extra_whitespaces", "false"},
            {"byte_fallback", "true"},
            {"character_coverage", "1.0"},
            {"allow_whitespace_only_pieces", "true"},
            {"split_by_whitespace", "true"},
            {"split_digits", "true"},
            {"bos_id", "-1"},
            {"eos_id", "-1"},
            {"hard_vocab_limit", "true"},
            {"max_sentence_length", "16384"},
            {"input_sentence_size", "2000000"},
            {"shuffle_input_sentence", "true"},
            {"num_threads", std::to_string(threads > 0 ? threads : 1)},
            {"minloglevel", "2"},
        };
        text_lines it(text, len);
        std::string proto;
        auto st = sentencepiece::SentencePieceTrainer::Train(args, &it, &proto);
        if (!st.ok())
            return fail(msg, cap, st.ToString());
        // hard_vocab_limit is not enforced by every trainer: check the result ourselves.
        sentencepiece::SentencePieceProcessor sp;
        st = sp.LoadFromSerializedProto(proto);
        if (!st.ok())
            return fail(msg, cap, "trained model does not load: " + st.ToString());
        if (sp.GetPieceSize() != vocab)
            return fail(msg, cap,
                        "Vocabulary size too high: the text yields only " + std::to_string(sp.GetPieceSize()) +
                            " pieces, " + std::to_string(vocab) + " were asked");
        char *buf = static_cast<char *>(std::malloc(proto.size() ? proto.size() : 1));
        if (!buf)
            return fail(msg, cap, "out of memory for a " + std::to_string(proto.size()) + "-byte model");
        std::memcpy(buf, proto.data(), proto.size());
        *model = buf;
        *model_len = proto.size();
        return 0;
    } catch (const std::exception &e) {
        return fail(msg, cap, std::string("sentencepiece: ") + e.what());
    } catch (...) {
        return fail(msg, cap, "sentencepiece: unknown C++ exception");
    }
}

extern "C" int spm_shim_load(spm_shim **out, const char *model, size_t model_len, char *msg, size_t cap)
{
    try {
        std::unique_ptr<spm_shim> s(new spm_shim);
        auto st = s->sp.LoadFromSerializedProto(std::string(model, model_len));
        if (!st.ok())
            return fail(msg, cap, st.ToString());
        if (s->sp.GetPieceSize() <= 0)
            return fail(msg, cap, "the model has no pieces");
        fill_pieces(s.get());
        *out = s.release();
        return 0;
    } catch (const std::exception &e) {
        return fail(msg, cap, std::string("sentencepiece: ") + e.what());
    } catch (...) {
        return fail(msg, cap, "sentencepiece: unknown C++ exception");
    }
}

extern "C" void spm_shim_free(spm_shim *s) { delete s; }

extern "C" void spm_shim_free_bytes(void *p) { std::free(p); }

extern "C" int spm_shim_vocab_size(const spm_shim *s) { return static_cast<int>(s->pieces.size()); }

extern "C" int spm_shim_encode(const spm_shim *s, const char *text, size_t len, int32_t **ids, size_t *n,
                               char *msg, size_t cap)
{
    try {
        std::vector<int> v;
        auto st = s->sp.Encode(absl::string_view(text, len), &v);
        if (!st.ok())
            return fail(msg, cap, st.ToString());
        int32_t *buf = static_cast<int32_t *>(std::malloc((v.size() ? v.size() : 1) * sizeof(int32_t)));
        if (!buf)
            return fail(msg, cap, "out of memory for " + std::to_string(v.size()) + " ids");
        for (size_t i = 0; i < v.size(); i++)
            buf[i] = v[i];
        *ids = buf;
        *n = v.size();
        return 0;
    } catch (const std::exception &e) {
        return fail(msg, cap, std::string("sentencepiece: ") + e.what());
    } catch (...) {
        return fail(msg, cap, "sentencepiece: unknown C++ exception");
    }
}

extern "C" int spm_shim_decode(const spm_shim *s, const int32_t *ids, size_t n, char **text, size_t *len,
                               char *msg, size_t cap)
{
    try {
        std::vector<int> v(ids, ids + n);
        std::string out;
        auto st = s->sp.Decode(v, &out);
        if (!st.ok())
            return fail(msg, cap, st.ToString());
        char *buf = static_cast<char *>(std::malloc(out.size() + 1));
        if (!buf)
            return fail(msg, cap, "out of memory for " + std::to_string(out.size()) + " bytes");
        std::memcpy(buf, out.data(), out.size());
        buf[out.size()] = 0;
        *text = buf;
        *len = out.size();
        return 0;
    } catch (const std::exception &e) {
        return fail(msg, cap, std::string("sentencepiece: ") + e.what());
    } catch (...) {
        return fail(msg, cap, "sentencepiece: unknown C++ exception");
    }
}

extern "C" int spm_shim_piece_bytes(const spm_shim *s, int id, char *buf, size_t cap)
{
    if (id < 0 || static_cast<size_t>(id) >= s->pieces.size())
        return -1;
    const std::string &p = s->pieces[static_cast<size_t>(id)];
    if (p.size() > cap)
        return -1;
    std::memcpy(buf, p.data(), p.size());
    return static_cast<int>(p.size());
}
