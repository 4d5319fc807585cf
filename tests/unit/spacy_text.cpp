// SPDX-License-Identifier: Apache-2.0
// spaCy string ids, hashes, Python str semantics and lexical attributes: known values from spaCy 3.8,
// murmurhash and thinc (see the design notes' facts-spacy.md, sections 3 and 4.2).
#include <catch2/catch.hpp>

#include <nerpipe/embedding/multi_hash_embed.hpp>
#include <nerpipe/tokenizer/spacy/string_id.hpp>
#include <nerpipe/tokenizer/spacy/lexeme.hpp>
#include <nerpipe/tokenizer/spacy/regex.hpp>

#include <string>

using namespace nerpipe;

TEST_CASE("spacy string ids: MurmurHash64A seed 1 and reserved symbols", "[spacy]") {
  CHECK(spacy::string_id("apple") == 8566208034543834098ULL);
  CHECK(spacy::string_id("coffee") == 3197928453018144401ULL);
  CHECK(spacy::string_id("Apple") == 6418411030699964375ULL);
  CHECK(spacy::string_id("Xxxxx") == 16072095006890171862ULL);
  CHECK(spacy::string_id("A") == 14862748245026736845ULL);
  CHECK(spacy::string_id("ple") == 16838316573854262908ULL);
  CHECK(spacy::string_id("the") == 7425985699627899538ULL);
  CHECK(spacy::string_id("") == 0);
  CHECK(spacy::string_id("X") == 101);
  CHECK(spacy::string_id("_") == 456);
  CHECK(spacy::string_id("ORG") == 383);
  CHECK(spacy::string_id("mark") == 423);
  CHECK(spacy::string_id("number") == 432);
  CHECK(spacy::string_id("IS_SPACE") == 6);
  CHECK(spacy::string_id("x") != 101);  // symbols are case-sensitive
}

TEST_CASE("spacy HashEmbed keys: MurmurHash3_x64_128 of the 8-byte id", "[spacy]") {
  const auto h = detail::murmurhash3_x64_128_u64(spacy::string_id("apple"), 8);
  CHECK(h[0] == 2653853934u);
  CHECK(h[1] == 3922826080u);
  CHECK(h[2] == 3980780901u);
  CHECK(h[3] == 3736755472u);
  const auto x = detail::murmurhash3_x64_128_u64(101, 11);
  CHECK(x[0] % 2500 == 730);
  CHECK(x[1] % 2500 == 2338);
  CHECK(x[2] % 2500 == 1936);
  CHECK(x[3] % 2500 == 2202);
}

TEST_CASE("spacy word_shape, prefix and suffix follow spacy/lang/lex_attrs.py", "[spacy]") {
  using spacy::detail::word_shape;
  CHECK(word_shape("Apple") == "Xxxxx");
  CHECK(word_shape("1990s") == "ddddx");
  CHECK(word_shape("C3PO") == "XdXX");
  CHECK(word_shape("$12,345.67") == "$dd,ddd.dd");
  CHECK(word_shape("aaaaaaa") == "xxxx");
  CHECK(word_shape("\u2019s") == "\u2019x");
  CHECK(word_shape("\u00b2") == "d");        // superscript two: isdigit
  CHECK(word_shape("\u00bd") == "\u00bd");   // one half: numeric, not a digit
  CHECK(word_shape("\u01c5") == "x");        // titlecase letter: alpha, not upper
  CHECK(word_shape(std::string(100, 'a')) == "LONG");
  CHECK(spacy::detail::first_cp("\u00e9t\u00e9") == "\u00e9");
  CHECK(spacy::detail::last_cps("caf\u00e9s", 3) == "f\u00e9s");
  CHECK(spacy::detail::last_cps("ab", 3) == "ab");
}

TEST_CASE("spacy lower() is Python's full lowercase mapping", "[spacy]") {
  using spacy::detail::py_lower;
  CHECK(py_lower("HeLLo") == "hello");
  CHECK(py_lower("\u0130") == "i\u0307");                         // special casing, two code points
  CHECK(py_lower("\u039f\u0394\u039f\u03a3") == "\u03bf\u03b4\u03bf\u03c2");  // final sigma
  CHECK(py_lower("\u03a3") == "\u03c3");                          // a lone sigma is not final
  CHECK(py_lower("\u03a3\u0391") == "\u03c3\u03b1");
  CHECK(py_lower("\u00c9COLE") == "\u00e9cole");
}

TEST_CASE("spacy isspace matches Python", "[spacy]") {
  using spacy::detail::py_isspace;
  for (std::uint32_t cp : {0x09u, 0x0Au, 0x0Bu, 0x0Cu, 0x0Du, 0x1Cu, 0x1Fu, 0x20u, 0x85u, 0xA0u, 0x1680u, 0x2000u, 0x200Au,
                           0x2028u, 0x2029u, 0x202Fu, 0x205Fu, 0x3000u})
    CHECK(py_isspace(cp));
  for (std::uint32_t cp : {0x200Bu, 0x41u, 0x180Eu, 0xFEFFu}) CHECK_FALSE(py_isspace(cp));
}

TEST_CASE("spacy UTF-8 validation rejects what a Python str cannot hold", "[spacy]") {
  const auto valid_utf8 = [](std::string_view s) { return utf8::is_valid(s); };  // the one UTF-8 module (core/utf8.hpp)
  CHECK(valid_utf8("plain \xc3\xa9 \xf0\x9f\x98\x80"));
  CHECK_FALSE(valid_utf8("\xc3"));          // truncated
  CHECK_FALSE(valid_utf8("\xed\xa0\x80"));  // surrogate
  CHECK_FALSE(valid_utf8("\xc0\xaf"));      // overlong
  CHECK_FALSE(valid_utf8("\xff"));
}

TEST_CASE("spacy Python re patterns are translated for PCRE2", "[spacy]") {
  using spacy::detail::python_re_to_pcre2;
  CHECK(python_re_to_pcre2("(?u)^[\\u00a1-\\uffff]$") == "^[\\x{a1}-\\x{ffff}]$");
  CHECK(python_re_to_pcre2("\\U0001F600|\\\\u") == "\\x{1F600}|\\\\u");
  spacy::detail::regex re("^[\\u00a1-\\uffff]+$", "test");
  spacy::detail::match_data md;
  std::size_t b = 0, e = 0;
  CHECK(re.find("\u00e9\u4e2d", 0, false, md.get(), b, e));
  CHECK(e == 5);
  CHECK_FALSE(re.find("abc", 0, false, md.get(), b, e));
  CHECK_THROWS_AS(spacy::detail::regex("(unclosed", "prefix_search"), model_error);
}
