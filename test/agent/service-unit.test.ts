/** The sidecar's systemd user unit (`agent add --service`). */
import { describe, expect, it } from 'vitest';
import { sidecarUnit, sidecarUnitName, userUnitDir } from '../../src/agent/sidecar/service-unit.js';

describe('sidecarUnit', () => {
  it("runs this installation's sidecar for the agent, quoting paths systemd would split", () => {
    const unit = sidecarUnit({
      agentId: 'w1',
      node: '/usr/bin/node',
      agentcomJs: '/opt/agent com/bin/agentcom.js',
      sidecarConfig: '/home/a/agents/w1/sidecar.json',
    });
    expect(unit).toContain(
      'ExecStart=/usr/bin/node "/opt/agent com/bin/agentcom.js" sidecar --config /home/a/agents/w1/sidecar.json\n',
    );
    expect(unit).toContain('WantedBy=default.target');
    expect(
      sidecarUnit({ agentId: 'w', node: '/n', agentcomJs: '/a/100%/$HOME/x.js', sidecarConfig: '/c' }),
    ).toContain('ExecStart=/n /a/100%%/$$HOME/x.js sidecar --config /c\n');
    expect(sidecarUnitName('w1')).toBe('agentcom-sidecar-w1.service');
  });

  it('goes where systemd looks for user units', () => {
    expect(userUnitDir({ XDG_CONFIG_HOME: '/x' })).toBe('/x/systemd/user');
    expect(userUnitDir({})).toMatch(/\/\.config\/systemd\/user$/);
  });
});
