from esk_pipeline.pipeline.keyboard import KEY_NEIGHBOURS, to_latin_layout


def test_wrong_layout_is_the_same_keys_on_qwerty():
    assert to_latin_layout("нет воды") == "ytn djls"
    assert to_latin_layout("Счётчик") == "Cx`nxbr"
    assert to_latin_layout("42 abc") == "42 abc"


def test_neighbours_are_the_physical_keys_around():
    assert set(KEY_NEIGHBOURS["ы"]) == {"ф", "в", "ц", "у", "я", "ч"}
    assert set(KEY_NEIGHBOURS["й"]) == {"ц", "ф"}
    assert set(KEY_NEIGHBOURS["s"]) == {"a", "d", "w", "e", "z", "x"}
    assert all(key not in near for key, near in KEY_NEIGHBOURS.items())
