/** The test harness (domain/harness.ts): which files and which parts of manifests decide how tests run. */
import { describe, expect, it } from 'vitest';
import { harnessChanges, harnessPart, isHarnessFile } from '../mcp-server/src/domain/harness.js';
import { assertionCount, fewerAssertions } from '../mcp-server/src/domain/test-files.js';

describe('the test harness', () => {
  it.each([
    ['vitest.config.ts', true],
    ['packages/a/jest.config.js', true],
    ['.mocharc.yml', true],
    ['tests/conftest.py', true],
    ['conftest.py', true],
    ['pytest.ini', true],
    ['Makefile', true],
    ['.github/workflows/ci.yml', true],
    ['package.json', true],
    ['pyproject.toml', true],
    ['src/index.ts', false],
    ['test/add.test.js', false],
    ['docs/vitest.config.md', false],
    ['sub/Makefile', false],
    ['.pytest.ini', true],
    ['pytest.toml', true],
    ['babel.config.js', true],
    ['.babelrc', true],
    ['vitest.setup.ts', true],
    ['src/setupTests.js', true],
    ['test/setup.js', true],
    ['test/setup-db.test.js', false],
  ])('%s is a harness file: %s', (file, expected) => {
    expect(isHarnessFile(file)).toBe(expected);
  });

  it('compares only the test scripts and runner settings of package.json', () => {
    const pkg = (extra: object) =>
      JSON.stringify({ name: 'x', scripts: { test: 'vitest run', build: 'tsc' }, ...extra });
    expect(harnessPart('package.json', pkg({ dependencies: { a: '1' } }))).toBe(harnessPart('package.json', pkg({})));
    expect(harnessPart('package.json', pkg({ jest: { testMatch: [] } }))).not.toBe(
      harnessPart('package.json', pkg({})),
    );
    const changed = harnessChanges([
      { path: 'package.json', before: pkg({}), after: pkg({ scripts: { test: 'echo ok', build: 'tsc' } }) },
      { path: 'package.json', before: pkg({}), after: pkg({ devDependencies: { b: '2' } }) },
    ]);
    expect(changed).toEqual([{ path: 'package.json', status: 'M', what: 'the test settings of package.json' }]);
  });

  it('compares only the pytest sections of pyproject.toml and setup.cfg', () => {
    const toml = (opts: string) => `[project]\nname = "x"\n\n[tool.pytest.ini_options]\naddopts = "${opts}"\n`;
    expect(harnessChanges([{ path: 'pyproject.toml', before: toml('-q'), after: toml('-q -k fast') }])).toHaveLength(1);
    expect(
      harnessChanges([{ path: 'pyproject.toml', before: toml('-q'), after: toml('-q').replace('"x"', '"y"') }]),
    ).toEqual([]);
    expect(
      harnessChanges([
        {
          path: 'setup.cfg',
          before: '[metadata]\nname = x\n',
          after: '[metadata]\nname = x\n[tool:pytest]\naddopts = -k a\n',
        },
      ]),
    ).toEqual([{ path: 'setup.cfg', status: 'A', what: 'the test settings of setup.cfg' }]);
  });

  it('says added, changed or deleted for whole harness files', () => {
    expect(
      harnessChanges([
        { path: 'conftest.py', before: null, after: 'x = 1\n' },
        { path: 'vitest.config.ts', before: 'a', after: 'b' },
        { path: 'pytest.ini', before: '[pytest]\n', after: null },
        { path: 'Makefile', before: 'same', after: 'same' },
      ]),
    ).toEqual([
      { path: 'conftest.py', status: 'A', what: 'conftest.py' },
      { path: 'vitest.config.ts', status: 'M', what: 'vitest.config.ts' },
      { path: 'pytest.ini', status: 'D', what: 'pytest.ini' },
    ]);
  });
});

describe('assertions in test files', () => {
  it('counts assertions by language, not those in comments', () => {
    const js = "expect(1).toBe(1);\n// expect(2).toBe(2)\nconst u = 'http://x'; assert.equal(1, 1);\n/* expect(3) */\n";
    expect(assertionCount('test/a.test.js', js)).toBe(2);
    expect(assertionCount('tests/test_a.py', 'assert x\n# assert y\nself.assertEqual(a, b)\n')).toBe(2);
    expect(assertionCount('a_test.go', 't.Errorf("x")\nassert.Equal(t, 1, 1)\n')).toBe(2);
    expect(assertionCount('tests/a.rs', 'assert_eq!(1, 1);\nassert!(true);\n')).toBe(2);
  });

  it('names a baseline test file with fewer assertions, not a new one', () => {
    expect(fewerAssertions('test/a.test.js', 'expect(1);\nexpect(2);\n', 'expect(1);\n// expect(2);\n')).toEqual({
      file: 'test/a.test.js',
      before: 2,
      now: 1,
    });
    expect(fewerAssertions('test/a.test.js', null, '')).toBeNull();
    expect(fewerAssertions('src/a.js', 'expect(1);', '')).toBeNull();
  });
});
