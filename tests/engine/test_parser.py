"""Grammar: what the DSL accepts, what it rejects, and how it says so."""

from decimal import Decimal

import pytest

from engine.dsl.ast import Binary, Boolean, Call, If, Name, Number, Pos, String, Unary
from engine.dsl.errors import DslSyntaxError
from engine.dsl.parser import parse


def num(text: str) -> Number:
    return Number(Decimal(text))


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("1 + 2 * 3", Binary("+", num("1"), Binary("*", num("2"), num("3")))),
        ("(1 + 2) * 3", Binary("*", Binary("+", num("1"), num("2")), num("3"))),
        ("10 - 4 - 3", Binary("-", Binary("-", num("10"), num("4")), num("3"))),
        ("8 / 4 % 3", Binary("%", Binary("/", num("8"), num("4")), num("3"))),
        ("-2 ^ 2", Unary("-", Binary("^", num("2"), num("2")))),
        ("-x * 2", Binary("*", Unary("-", Name("x")), num("2"))),
        ("+x", Unary("+", Name("x"))),
        ("2 * x ^ 3", Binary("*", num("2"), Binary("^", Name("x"), num("3")))),
        (
            "a || b && c",
            Binary("||", Name("a"), Binary("&&", Name("b"), Name("c"))),
        ),
        (
            "a + 1 >= b * 2 && c",
            Binary(
                "&&",
                Binary(">=", Binary("+", Name("a"), num("1")), Binary("*", Name("b"), num("2"))),
                Name("c"),
            ),
        ),
        ('level == "analyst"', Binary("==", Name("level"), String("analyst"))),
        ("true != false", Binary("!=", Boolean(True), Boolean(False))),
        ("max(a, b, 3)", Call("max", (Name("a"), Name("b"), num("3")))),
        ("count_over()", Call("count_over", ())),
        (
            "if (s >= 0.8) then 1.2 else 0.9",
            If(Binary(">=", Name("s"), num("0.8")), num("1.2"), num("0.9")),
        ),
        (
            "if(a) then if(b) then 1 else 2 else 3",
            If(Name("a"), If(Name("b"), num("1"), num("2")), num("3")),
        ),
        (
            "if (a) then 1 else x + 2",
            If(Name("a"), num("1"), Binary("+", Name("x"), num("2"))),
        ),
        ("0.0000000001", num("0.0000000001")),
        ("iffy + true_value", Binary("+", Name("iffy"), Name("true_value"))),
        ("_private1", Name("_private1")),
        ("a\n  + b", Binary("+", Name("a"), Name("b"))),
    ],
)
def test_accepts_the_engine_syntax(text, tree):
    assert parse(text) == tree


def test_positions_are_one_based_line_and_column():
    tree = parse("a +\n  max(b, 2)")
    assert tree.pos == Pos(1, 1)
    assert tree.right.pos == Pos(2, 3)
    assert tree.right.args[1].pos == Pos(2, 10)


def test_number_literal_keeps_its_exact_value():
    assert parse("123456789012345678.1234567891").value == Decimal("123456789012345678.1234567891")


def syntax_error(text: str) -> DslSyntaxError:
    with pytest.raises(DslSyntaxError) as info:
        parse(text)
    return info.value


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("a.b", 2, "attribute access"),
        ("salary.real", 7, "attribute access"),
        ("a[0]", 2, "subscripts"),
        ("lambda x: x", 1, "lambdas are not allowed"),
        ("a = 1", 3, "assignment ('=') is not allowed"),
        ("a; b", 2, "statements (';')"),
        ("import os", 1, "statements ('import')"),
        ("__x + 1", 1, "names starting with '__'"),
        ('__import__("os")', 1, "names starting with '__'"),
        ("x ^ 1.5", 5, "whole-number literal from 0 to 64"),
        ("x ^ y", 5, "whole-number literal from 0 to 64"),
        ("x ^ 65", 5, "whole-number literal from 0 to 64"),
        ("x ^ -1", 5, "whole-number literal from 0 to 64"),
        ("x ^ 2 ^ 2", 5, "whole-number literal from 0 to 64"),
        ("1.12345678901", 1, "at most 10 decimal places"),
        ("1e5", 1, "exponent notation"),
        ("2.5E-3 * x", 1, "exponent notation"),
        ("a < b < c", 7, "cannot be chained"),
        ("a == b != c", 8, "cannot be chained"),
        ("foo(1)", 1, "unknown function 'foo'"),
        ("Salary", 1, "names are lower case"),
        ("max", 1, "'max' is a function"),
        ("(1 + 2", 7, "unexpected end of expression"),
        ("1 +", 4, "unexpected end of expression"),
        ("a and b", 3, "use '&&'"),
        ("a or b", 3, "use '||'"),
        ("'text'", 1, "double quotes"),
        ('"open', 1, "unterminated text"),
        ("a # note", 3, "comments are not allowed"),
        ("if (a) 1 else 2", 8, "expected 'then'"),
        ("x." + "y", 2, "attribute access"),
        ("True", 1, "true / false"),
        ("{1}", 1, "braces"),
        ("", 1, "empty expression"),
        ("a" * 64, 1, "longer than 63"),
        ("99999999999999999999999999999", 1, "too large"),
    ],
)
def test_rejects_with_position_and_reason(text, column, fragment):
    error = syntax_error(text)
    assert fragment in error.message
    assert (error.line, error.column) == (1, column)


def test_unknown_function_suggests_the_closest_catalog_name():
    assert "did you mean 'allocate'?" in syntax_error("alocate(p, w)").message
    assert "did you mean 'round2'?" in syntax_error("rnd2(x)").message


def test_error_text_shows_message_position_and_caret_excerpt():
    error = syntax_error("bonus +\n  base.real")
    assert (error.line, error.column) == (2, 7)
    assert error.excerpt == "  base.real\n      ^"
    text = str(error)
    assert text.startswith("line 2, column 7: attribute access")
    assert text.endswith("  base.real\n      ^")


def test_literal_scale_and_range_errors_carry_their_own_code():
    assert syntax_error("0.12345678901").code == "literal_scale"
    assert syntax_error("1" + "0" * 28).code == "literal_range"
    assert syntax_error("a.b").code == "syntax"


def test_nothing_reaches_python_eval(monkeypatch):
    import builtins

    def forbidden(*_args, **_kwargs):
        raise AssertionError("the parser must never call eval/exec/compile")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, forbidden)
    assert parse("max(a, 2) * 3") == Binary("*", Call("max", (Name("a"), num("2"))), num("3"))
    with pytest.raises(DslSyntaxError):
        parse('__import__("os").system("true")')


def test_non_text_source_is_a_type_error():
    with pytest.raises(TypeError):
        parse(b"1 + 1")  # type: ignore[arg-type]


def test_hostile_sizes_are_rejected_before_any_recursive_walk():
    assert "nested too deeply" in syntax_error(" + ".join(["a"] * 250)).message
    assert "nested too deeply" in syntax_error("-" * 250 + "x").message
    assert "longer than 10000 characters" in syntax_error("x" * 10_001).message
    assert parse("(" * 3000 + "1" + ")" * 3000) == num("1")
    assert isinstance(parse(" + ".join(["a"] * 150)), Binary)


def test_function_name_without_parentheses_says_how_to_call_it():
    error = syntax_error("not is_leaver")
    assert error.message == "'not' is a function; call it with parentheses: not(...)"
    assert error.column == 1


@pytest.mark.parametrize(
    ("text", "message", "line", "column"),
    [
        ("1 +", "unexpected end of expression", 1, 4),
        ("(1 + 2", "unexpected end of expression; expected ')'", 1, 7),
        ("max(1,\n  2", "unexpected end of expression; expected ')' or ','", 2, 4),
        ("if (a) 1 else 2", "unexpected '1'; expected 'then'", 1, 8),
        (")", "unexpected ')'", 1, 1),
        ("a )", "unexpected ')'", 1, 3),
        ("a b", "unexpected 'b'", 1, 3),
        ("2 (", "unexpected '('", 1, 3),
        ("2x", "unexpected 'x' right after the number '2'", 1, 2),
        ("a @ b", "unexpected character '@'", 1, 3),
        ("zzz(1)", "unknown function 'zzz'", 1, 1),
        ("x ^ 1.5", "the exponent of '^' must be a whole-number literal from 0 to 64", 1, 5),
        (
            "a < b <= c",
            "comparisons cannot be chained ('<' then '<='); "
            "combine them with '&&', like a < b && b < c",
            1,
            7,
        ),
    ],
    ids=[
        "end-many-expected-not-listed",
        "end-one-expected",
        "end-on-a-later-line-two-expected",
        "token-one-expected",
        "five-expected-not-listed",
        "nothing-listable-expected",
        "name-after-name",
        "parenthesis-after-number",
        "name-glued-to-number",
        "character-without-a-hint",
        "unknown-function-nothing-close",
        "exponent-not-a-whole-number",
        "chained-comparison",
    ],
)
def test_parse_errors_say_exactly_what_was_found_and_what_was_expected(
    text: str, message: str, line: int, column: int
) -> None:
    """The full message, not a fragment: 'expected ...' lists at most four alternatives
    joined by 'or' (a longer list helps nobody), and 'right after the number' is only said
    when a name follows a number."""
    error = syntax_error(text)
    assert (error.message, error.line, error.column, error.code) == (
        message,
        line,
        column,
        "syntax",
    )


@pytest.mark.parametrize(
    ("text", "excerpt"),
    [
        ("Salary", "Salary\n^"),
        ("1 +", "1 +\n   ^"),
        ("1 +  ", "1 +  \n     ^"),
        ("1 +\r", "1 +\n   ^"),
        ("a.b\r\n+ 1", "a.b\n ^"),
        ("rate * TAX", "rate * TAX\n       ^"),
        ("\tSalary", " Salary\n ^"),
    ],
    ids=[
        "first-column",
        "end-of-text",
        "end-after-trailing-spaces",
        "end-after-carriage-return",
        "windows-line-ending",
        "line-ending-in-capital-x",
        "tab-shown-as-one-space",
    ],
)
def test_caret_excerpt_shows_the_line_as_written_with_the_caret_under_the_column(
    text: str, excerpt: str
) -> None:
    """Tabs become one space (so the caret lines up), a trailing carriage return is dropped,
    anything else stays; the caret sits under the column, at most one past the line's end."""
    assert syntax_error(text).excerpt == excerpt


def test_caret_excerpt_of_a_line_outside_the_text_is_an_empty_line() -> None:
    from engine.dsl.errors import caret_excerpt

    assert caret_excerpt("a\nb", 0, 1) == "\n^"
    assert caret_excerpt("a\nb", 3, 2) == "\n^"
    assert caret_excerpt("a\nb", 2, 1) == "b\n^"


def test_errors_raised_while_building_the_tree_have_the_syntax_code() -> None:
    """Names, calls, chained comparisons and exponents are checked while building the tree;
    their problems carry the same code as grammar errors."""
    for text in ("Salary", "zzz(1)", "a < b < c", "x ^ y"):
        assert syntax_error(text).code == "syntax", text


def test_literals_and_if_carry_their_position() -> None:
    """Problems found later (typing, defaults) are located by these positions."""
    tree = parse("x &&\n  true || false")
    assert tree.left.right.pos == Pos(2, 3)
    assert tree.right.pos == Pos(2, 11)
    tree = parse('1 + if (a) then "x" else 2 ^ 3')
    assert tree.right.pos == Pos(1, 5)
    assert tree.right.then.pos == Pos(1, 17)
    assert tree.right.else_.right.pos == Pos(1, 30)


def test_limit_errors_point_at_the_start_and_exponents_go_up_to_64():
    error = syntax_error("x" * 10_001)
    assert (error.line, error.column) == (1, 1)
    assert parse("x ^ 64") == Binary("^", Name("x"), num("64"))
    assert parse("x ^ 0") == Binary("^", Name("x"), num("0"))
