from decimal import Decimal

from engine.dsl.ast import Binary, Call, If, Name, Number, names, walk


def test_walk_visits_every_node_in_source_order():
    tree = If(
        cond=Binary(">=", Name("score"), Number(Decimal("0.8"))),
        then=Call("max", (Name("a"), Name("b"))),
        else_=Number(Decimal("0")),
    )
    kinds = [type(n).__name__ for n in walk(tree)]
    assert kinds == ["If", "Binary", "Name", "Number", "Call", "Name", "Name", "Number"]
    assert names(tree) == {"score", "a", "b"}
