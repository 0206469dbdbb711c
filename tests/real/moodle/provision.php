<?php
// Provision a gradesync test world into a real Moodle site through Moodle's own PHP APIs.
//
//   php provision.php <moodle site dir> build <spec.json>     → prints the created ids as JSON
//   php provision.php <moodle site dir> override <ops.json>   → teacher overrides / deletions after the tool posted
//
// The world itself (who is enrolled how, what each learner did) is described in world.py; this script
// only executes it: tool types (lti_add_type, LTI 1.3, RSA key = the public key the test generated),
// users, courses, enrolments, LTI activities (testing_data_generator), locked grade items, teacher
// overrides (grade_item::update_final_grade(..., 'gradebook')) and deleted courses.
// Everything is named with the spec's `prefix`, so a world can be built on any site, fresh or not.
// Facts: ../../../../shared/docs/lti-platform-behavior.md §10 (…/shared/docs from the repo's parent).

define('CLI_SCRIPT', true);

if ($argc < 4) {
    fwrite(STDERR, "usage: php provision.php <site dir> build|override <file.json>\n");
    exit(2);
}
$site = rtrim($argv[1], '/');
$command = $argv[2];
$input = json_decode(file_get_contents($argv[3]), true, 512, JSON_THROW_ON_ERROR);

require($site . '/config.php');
require_once($CFG->dirroot . '/mod/lti/locallib.php');
require_once($CFG->dirroot . '/lib/testing/generator/lib.php');
require_once($CFG->dirroot . '/lib/gradelib.php');
require_once($CFG->dirroot . '/course/lib.php');

\core\session\manager::set_user(get_admin());   // lti_add_type records createdby = $USER->id

/** The grade item of an LTI activity (none when the activity does not accept grades). */
function lti_grade_item(int $courseid, int $instance): ?grade_item {
    $item = grade_item::fetch(['courseid' => $courseid, 'itemtype' => 'mod', 'itemmodule' => 'lti',
                               'iteminstance' => $instance, 'itemnumber' => 0]);
    return $item ?: null;
}

/** Register the tool the way an administrator's "Manage tools" form would (README of real-moodle). */
function add_tool_type(array $t): array {
    $type = new stdClass();
    $type->name = $t['name'];
    $type->baseurl = $t['baseurl'];
    $type->state = LTI_TOOL_STATE_CONFIGURED;
    $type->coursevisible = LTI_COURSEVISIBLE_ACTIVITYCHOOSER;
    $type->ltiversion = LTI_VERSION_1P3;
    $config = new stdClass();
    $config->lti_toolurl = $t['baseurl'];
    $config->lti_ltiversion = LTI_VERSION_1P3;
    $config->lti_keytype = LTI_RSA_KEY;
    $config->lti_publickey = file_get_contents($t['publickey_file']);
    $config->lti_initiatelogin = $t['baseurl'] . '/login';
    $config->lti_redirectionuris = $t['baseurl'] . '/launch';
    $config->lti_sendname = LTI_SETTING_ALWAYS;
    $config->lti_sendemailaddr = LTI_SETTING_ALWAYS;
    $config->lti_acceptgrades = LTI_SETTING_DELEGATE;
    $config->lti_coursevisible = LTI_COURSEVISIBLE_ACTIVITYCHOOSER;
    // 2 = grade sync and column management, 0 = off (then the AGS scopes are never granted).
    $config->ltiservice_gradesynchronization = $t['gradesync'];
    $config->ltiservice_memberships = 1;
    $id = lti_add_type($type, $config);
    $row = lti_get_type($id);
    return ['id' => (int)$id, 'clientid' => $row->clientid];
}

function build(array $spec): array {
    global $DB, $CFG;
    $gen = new testing_data_generator();
    $out = ['types' => [], 'users' => [], 'courses' => [], 'activities' => [],
            'wwwroot' => $CFG->wwwroot, 'moodle_release' => $CFG->release, 'moodle_version' => $CFG->version];
    foreach ($spec['types'] as $key => $t) {
        $out['types'][$key] = add_tool_type($t);
    }
    foreach ($spec['users'] as $key => $u) {
        $user = $gen->create_user(['username' => $u['username'], 'firstname' => $u['firstname'],
                                   'lastname' => $u['lastname'], 'email' => $u['email']]);
        $out['users'][$key] = (int)$user->id;
    }
    $roles = $DB->get_records_menu('role', null, '', 'shortname, id');
    foreach ($spec['courses'] as $key => $c) {
        $course = $gen->create_course(['fullname' => $c['fullname'], 'shortname' => $c['shortname'],
                                       'startdate' => $c['startdate'], 'enddate' => $c['enddate']]);
        $out['courses'][$key] = ['id' => (int)$course->id];
        foreach ($c['enrol'] as $e) {
            $status = ($e['status'] ?? 'active') === 'suspended' ? ENROL_USER_SUSPENDED : ENROL_USER_ACTIVE;
            $gen->enrol_user($out['users'][$e['user']], $course->id, $roles[$e['role']], 'manual', 0, 0, $status);
        }
        foreach ($c['activities'] as $akey => $a) {
            $lti = $gen->create_module('lti', [
                'course' => $course->id, 'name' => $a['name'], 'typeid' => $out['types'][$a['type']]['id'],
                'toolurl' => '', 'grade' => $a['grade'],
                'instructorchoiceacceptgrades' => $a['acceptgrades'] ? 1 : 0]);
            $item = lti_grade_item((int)$course->id, (int)$lti->id);
            if ($item && !empty($a['locked'])) {
                $item->set_locked(time(), false, true);
            }
            $out['activities'][$akey] = ['course' => $key, 'instance' => (int)$lti->id, 'cmid' => (int)$lti->cmid,
                                         'grade_item' => $item ? (int)$item->id : null];
        }
        if (!empty($c['delete'])) {
            // delete_course prints progress: keep stdout for the JSON answer.
            ob_start();
            delete_course($course->id, false);
            ob_end_clean();
        }
    }
    return $out;
}

/** After the tool's own score POSTs: teacher overrides in the gradebook (`source = 'gradebook'`). */
function override(array $ops): array {
    $done = [];
    foreach ($ops['overrides'] as $o) {
        $item = lti_grade_item((int)$o['course'], (int)$o['instance']);
        if (!$item) {
            throw new coding_exception('no grade item for LTI instance ' . $o['instance']);
        }
        $ok = $item->update_final_grade((int)$o['user'], (float)$o['grade'], 'gradebook');
        $grade = grade_grade::fetch(['itemid' => $item->id, 'userid' => (int)$o['user']]);
        $done[] = ['instance' => $o['instance'], 'user' => $o['user'], 'ok' => (bool)$ok,
                   'finalgrade' => $grade ? (float)$grade->finalgrade : null,
                   'overridden' => $grade ? (int)$grade->overridden : 0];
    }
    return ['overrides' => $done];
}

/** Read a grade as the gradebook holds it, with its number of history rows (every write to a grade,
 *  the tool's included, adds one): the live test checks overrides were not touched. */
function read_grades(array $q): array {
    global $DB;
    $rows = [];
    foreach ($q['grades'] as $g) {
        $item = lti_grade_item((int)$g['course'], (int)$g['instance']);
        $grade = $item ? grade_grade::fetch(['itemid' => $item->id, 'userid' => (int)$g['user']]) : null;
        $rows[] = ['instance' => $g['instance'], 'user' => $g['user'],
                   'finalgrade' => $grade && $grade->finalgrade !== null ? (float)$grade->finalgrade : null,
                   'rawgrade' => $grade && $grade->rawgrade !== null ? (float)$grade->rawgrade : null,
                   'overridden' => $grade ? (int)$grade->overridden : 0,
                   'timemodified' => $grade ? (int)$grade->timemodified : null,
                   'history' => $item ? $DB->count_records('grade_grades_history',
                                                           ['itemid' => $item->id, 'userid' => (int)$g['user']]) : 0];
    }
    return ['grades' => $rows];
}

$result = match ($command) {
    'build' => build($input),
    'override' => override($input),
    'grades' => read_grades($input),
    default => throw new coding_exception('unknown command ' . $command),
};
echo json_encode($result, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES), "\n";
