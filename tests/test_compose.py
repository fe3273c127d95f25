"""utils.predict.compose.parse_color: the spellings --target-bgr accepts for a colour."""
import numpy as np
import pytest

from utils.predict.compose import DEFAULT_TARGET_BGR, NAMED_COLORS, parse_color


@pytest.mark.parametrize('text,rgb', [('red', (255, 0, 0)), ('Lime', (0, 255, 0)),
                                      (' greenscreen ', (0, 177, 64)), ('#0080ff', (0, 128, 255)),
                                      ('0, 128,255', (0, 128, 255)), ('default', DEFAULT_TARGET_BGR)])
def test_colours(text, rgb):
    np.testing.assert_allclose(parse_color(text), np.array(rgb, np.float32) / 255)


@pytest.mark.parametrize('text', ['red.png', 'backgrounds/red', 'reddish', '#12345', '1,2'])
def test_not_colours(text):
    assert parse_color(text) is None


def test_out_of_range_component_is_an_error():
    with pytest.raises(ValueError, match='0-255'):
        parse_color('300,0,0')


def test_names_are_lower_case_rgb_triples():
    for name, rgb in NAMED_COLORS.items():
        assert name == name.lower() and '.' not in name and '/' not in name
        assert len(rgb) == 3 and all(0 <= v <= 255 for v in rgb)
